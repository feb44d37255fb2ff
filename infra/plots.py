"""Training-curve plots logged to MLflow as images: the one loss chart every family draws.

word2vec and multisense report a loss every chunk of corpus words
(``StepLog.words``); the metric and CLIP trainers every N optimiser steps
(:class:`~replearn.lib.step_loss.StepLoss`, ``.step``). :func:`log_step_loss`
plots either against its x-axis and marks the epoch boundaries.

:func:`what_changed_figure` draws a new model against the champion
(:class:`~replearn.lib.eval.what_changed.WhatChanged`): how stable the word
neighbourhoods stayed, and which metrics went up or down.

:func:`mining_hardness_figure` draws how hard index-mined triplets are
(:class:`~replearn.lib.metric.mining_stats.MiningStats`): the histogram of
``d(a, n) - d(a, p)`` against the margin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from replearn.infra.tracking import client
from replearn.lib.eval.what_changed import WhatChanged
from replearn.lib.metric.mining_stats import MiningStats

__all__ = ["X_AXES", "log_step_loss", "mining_hardness_figure", "step_loss_figure", "what_changed_figure"]

X_AXES = {"words": "corpus words processed", "step": "optimiser steps"}
"""The x-axes :func:`log_step_loss` knows: the attribute of a step log read, and its axis label."""


def step_loss_figure(steps: Sequence, ylabel: str, title: str, x: str = "words") -> Figure:
    """A figure of ``step.loss`` against ``getattr(step, x)``, dotted lines where ``step.epoch`` changes.

    Args:
        steps: step logs with ``loss``, ``epoch`` and the ``x`` attribute, in training order (>= 1).
        ylabel, title: the y-axis label (the loss and its unit) and the title.
        x: a key of :data:`X_AXES`: ``"words"`` (corpus words processed) or ``"step"`` (optimiser steps).

    Raises:
        ValueError: an unknown ``x``.
    """
    if x not in X_AXES:
        raise ValueError(f"x must be one of {sorted(X_AXES)}, got {x!r}")
    xs = [getattr(s, x) for s in steps]
    fig = Figure(figsize=(8, 4), dpi=150)                                  # 1200 x 600 pixels
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(xs, [s.loss for s in steps], lw=1.2, marker="." if len(steps) <= 200 else None, ms=3)
    ends = [xs[i] for i in range(len(steps) - 1) if steps[i + 1].epoch != steps[i].epoch]
    for i, end in enumerate(ends):
        ax.axvline(end, color="grey", lw=0.8, ls=":", label="epoch boundary" if i == 0 else None)
    if ends:
        ax.legend(loc="upper right", frameon=False, fontsize=8)
    if x == "words":
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))                # 500k, 1M rather than an offset 1e6
    ax.set_xlabel(X_AXES[x])
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} ({len(steps)} points)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def log_step_loss(tracking_uri: str, run_id: str, steps: Sequence, ylabel: str, title: str,
                  artifact: str = "plots/loss.png", x: str = "words") -> None:
    """Plot ``step.loss`` against ``x`` (:func:`step_loss_figure`) and log it to the run as the image ``artifact``."""
    client(tracking_uri).log_figure(run_id, step_loss_figure(steps, ylabel, title, x), artifact)


_UP, _DOWN, _FLAT = "#2e7d32", "#c62828", "#9e9e9e"                      # green, red, grey


def _jaccard_bins(topn: int) -> np.ndarray:
    """Histogram edges for Jaccard indices of two ``topn``-sets: the only values are ``k / (2 topn - k)``
    (``k`` shared), so the edges are the midpoints between them, plus 0 and 1 -- one bar per ``k``, no gaps."""
    t = max(1, int(topn))
    values = np.array([k / (2 * t - k) for k in range(t + 1)])
    return np.concatenate(([0.0], (values[:-1] + values[1:]) / 2, [1.0]))


def what_changed_figure(report: WhatChanged) -> Figure:
    """A new model against the champion, in two panels.

    Left: a histogram of the Jaccard index of the top-``report.topn`` neighbours
    of each shared word compared (:func:`~replearn.lib.eval.what_changed.neighbour_changes`),
    in [0, 1], with a vertical line at the mean. Right: the metric deltas
    (``new - champion``) as horizontal bars, green up, red down, each labelled with
    its signed value, and a line at zero; "no champion to compare" when no metric
    has a champion value. The title names the champion.
    """
    deltas = report.deltas.filter(report.deltas["delta"].is_not_null()) if report.deltas.height else report.deltas
    fig = Figure(figsize=(11, max(4.0, 1.5 + 0.32 * deltas.height)), dpi=150)
    FigureCanvasAgg(fig)
    ax_j, ax_d = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1]})

    jac = report.neighbour_changes["jaccard"].to_numpy() if report.neighbour_changes.height else np.empty(0)
    ax_j.set_xlabel(f"top-{report.topn} neighbours shared with the champion (Jaccard)")
    ax_j.set_ylabel("words")
    ax_j.set_xlim(0, 1)
    if jac.size:
        ax_j.hist(jac, bins=_jaccard_bins(report.topn), color="#5c6bc0", edgecolor="white")
        mean = float(jac.mean())
        ax_j.axvline(mean, color="black", lw=1.2, ls="--", label=f"mean {mean:.2f}")
        ax_j.legend(loc="upper right", frameon=True, framealpha=0.9, fontsize=8)
        ax_j.set_title(f"neighbourhood stability, {jac.size:,} shared words", fontsize=10)
    else:
        ax_j.text(0.5, 0.5, "no shared words compared", ha="center", va="center", transform=ax_j.transAxes)
        ax_j.set_title("neighbourhood stability", fontsize=10)
    ax_j.grid(alpha=0.3)

    ax_d.set_title("metrics: new - champion", fontsize=10)
    if deltas.height == 0:
        ax_d.text(0.5, 0.5, "no champion to compare", ha="center", va="center", transform=ax_d.transAxes)
        ax_d.set_xticks([])
        ax_d.set_yticks([])
    else:
        names = deltas["metric"].to_list()[::-1]                       # first metric on top
        vals = deltas["delta"].to_numpy()[::-1]
        colours = [_UP if v > 0 else _DOWN if v < 0 else _FLAT for v in vals]
        y = np.arange(len(vals))
        ax_d.barh(y, vals, color=colours, height=0.6)
        ax_d.set_yticks(y, names, fontsize=8)
        ax_d.axvline(0, color="black", lw=0.8)
        span = float(np.abs(vals).max()) or 1.0
        ax_d.set_xlim(-1.35 * span, 1.35 * span)                       # room for the labels on both sides
        for yi, v in zip(y, vals):
            ax_d.text(v, yi, f" {v:+.4f} ", va="center", ha="left" if v >= 0 else "right", fontsize=8)
        ax_d.set_xlabel("delta (new - champion)")
        ax_d.grid(axis="x", alpha=0.3)

    fig.suptitle(f"What changed vs {report.champion}" if report.champion else "What changed (no champion yet)")
    fig.tight_layout()
    return fig


_VIOLATES, _SATISFIES = "#e65100", "#1565c0"                             # orange, blue


def mining_hardness_figure(stats: MiningStats, title: str = "Index-mined triplets") -> Figure:
    """The hardness of mined triplets: a histogram of the slack ``d(a, n) - d(a, p)`` (``stats.hist_edges`` /
    ``stats.hist_counts``, :func:`~replearn.lib.metric.mining_stats.mining_stats`), in the loss's distance.

    Bars left of the margin (the triplets that violate it, so give the hinge a gradient) are orange, the others
    blue; a dashed line marks the margin, a dotted one 0 (the negative as near as the positive; left of it the
    order is violated). The legend gives the shares and the title the triplets and the guard's removals.
    """
    fig = Figure(figsize=(8, 4.5), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    edges, counts = np.asarray(stats.hist_edges), np.asarray(stats.hist_counts)
    left, width = edges[:-1], np.diff(edges)
    hard = (left + width / 2) < stats.margin
    ax.bar(left[hard], counts[hard], width=width[hard], align="edge", color=_VIOLATES, edgecolor="white",
           label=f"violate the margin: {100 * stats.margin_violations:.1f} % of triplets")
    ax.bar(left[~hard], counts[~hard], width=width[~hard], align="edge", color=_SATISFIES, edgecolor="white",
           label=f"satisfy it: {100 * (1 - stats.margin_violations):.1f} %")
    ax.axvline(stats.margin, color="black", lw=1.2, ls="--", label=f"margin {stats.margin:g}")
    ax.axvline(0.0, color="grey", lw=1.0, ls=":",
               label=f"negative as near as positive (left: {100 * stats.order_violations:.1f} %)")
    ax.set_xlabel("d(anchor, negative) - d(anchor, positive)   (smaller = harder)")
    ax.set_ylabel("triplets")
    ax.legend(loc="best", frameon=True, framealpha=0.9, fontsize=8)
    ax.set_title(f"{title}: {stats.triplets:,} triplets over {stats.anchors:,} anchors\n"  # two lines: fits 8 in
                 f"the guard removed {stats.guard_removed:,} same-label candidates", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
