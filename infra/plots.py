"""Training-curve plots logged to MLflow as images: the one loss chart every family draws.

word2vec and multisense report a loss every chunk of corpus words
(``StepLog.words``); the metric and CLIP trainers every N optimiser steps
(:class:`~replearn.lib.step_loss.StepLoss`, ``.step``). :func:`log_step_loss`
plots either against its x-axis and marks the epoch boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from replearn.infra.tracking import client

__all__ = ["X_AXES", "log_step_loss", "step_loss_figure"]

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
