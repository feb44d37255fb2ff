"""What a person sees of index mining, shared by the mine stages (tasks/mining.py) and the train stages
(tasks/metric.py, tasks/clip.py).

* :func:`report_mining`: a mine stage's table written atomically (``mined.parquet``), the ``mining.*`` metrics, the
  hardness histogram ``mining/hardness.png`` (infra/plots.py), the summary ``mining/summary.md`` in the MLflow
  run, the same markdown as the Prefect artifact ``mined-negatives``, and a log line.
* :func:`mining_markdown`: that summary: how the negatives were mined, the statistics
  (lib/metric/mining_stats.py) and the hardest triplets, described by the family.
* :func:`stage_triplets`: the train stage's side: the mine stage's table read back into positions for the first
  epoch, its statistics logged as ``train.mining.*`` at epoch 1; :func:`log_refresh` logs each later refresh there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from prefect.artifacts import create_markdown_artifact
from prefect.logging import get_run_logger

from replearn.infra.plots import mining_hardness_figure
from replearn.infra.stage_outputs import Mined
from replearn.infra.tracking import client, log_metrics
from replearn.lib.metric.index_mining import MinedTriplets, read_mined, write_mined
from replearn.lib.metric.mining_refresh import MiningRefresh
from replearn.lib.metric.mining_stats import mining_stats

__all__ = ["ARTIFACT_KEY", "HARDEST_SHOWN", "log_refresh", "mining_markdown", "report_mining", "stage_triplets"]

HARDEST_SHOWN = 10
"""Triplets listed in the report: the hardest (smallest ``d_an - d_ap``)."""

ARTIFACT_KEY = "mined-negatives"
"""The Prefect markdown artifact of a mine stage (both families)."""

#: (column headers of the hardest triplets, row t of the table -> its cells) as a family describes them
Hardest = tuple[Sequence[str], Callable[[int], Sequence[Any]]]


def mining_markdown(refresh: MiningRefresh, intro: str, hardest: Hardest) -> str:
    """The report a person reads: ``intro`` (what was mined over, with which model), the statistics, and the
    :data:`HARDEST_SHOWN` hardest triplets.

    Args:
        refresh: the mining (triplets in positions, statistics, time).
        intro: one paragraph: the items, the negatives' rule, the model that mined.
        hardest: the family's columns for a triplet (e.g. the classes, the captions) and a function of a triplet's
            row giving its cells; ``d_ap``, ``d_an`` and the rank are added.
    """
    m, s = refresh.triplets, refresh.stats
    lines = [
        "# Hard negatives mined from an index",
        "",
        f"{intro} {m.distance}; {m.k} neighbours searched at once, {s.fallback_anchors:,} anchors searched again "
        f"among the other classes. {refresh.seconds:.2f} s.",
        "",
        "| statistic | value |",
        "|---|---|",
        f"| triplets | {s.triplets:,} |",
        f"| violate the margin {s.margin:.4g} (d_an < d_ap + margin) | {100 * s.margin_violations:.1f} % |",
        f"| negative nearer than the positive (d_an < d_ap) | {100 * s.order_violations:.1f} % |",
        f"| semi-hard (d_ap <= d_an < d_ap + margin) | {100 * s.semi_hard:.1f} % |",
        f"| same-class candidates removed by the guard | {s.guard_removed:,} ({s.guard_removed_per_anchor:.1f} "
        f"per anchor) |",
        f"| anchors without a positive / a negative | {s.anchors_without_positive:,} / "
        f"{s.anchors_without_negative:,} |",
        f"| mean d_ap / d_an | {s.mean_d_ap:.3f} / {s.mean_d_an:.3f} |",
        f"| mean rank of the negatives | {s.mean_negative_rank:.1f} |",
        "",
    ]
    if len(m):
        heads, cells = hardest
        order = np.argsort(m.d_an - m.d_ap, kind="stable")[:HARDEST_SHOWN]
        lines += [f"The {len(order)} hardest triplets:", "",
                  "| " + " | ".join([*heads, "d_ap", "d_an", "rank"]) + " |",
                  "|" + "---|" * (len(heads) + 3)]
        for t in order:
            row = [str(c).replace("|", "/") for c in cells(int(t))]
            lines.append("| " + " | ".join([*row, f"{m.d_ap[t]:.3f}", f"{m.d_an[t]:.3f}",
                                            str(m.negative_rank[t])]) + " |")
    return "\n".join(lines) + "\n"


def report_mining(refresh: MiningRefresh, out_path: str, ids: np.ndarray | None, metadata: dict[str, Any],
                  markdown: str, title: str, tracking_uri: str, run_id: str) -> Mined:
    """Write a mine stage's table and report it (module docstring).

    Args:
        refresh: the mining. out_path: ``mined.parquet`` (written atomically).
        ids: (N,) the ids of the table (:meth:`~replearn.lib.metric.index_mining.MinedTriplets.to_arrow`), None:
            positions. metadata: more JSON for the table's footer (what the ids are, the model, the run).
        markdown: :func:`mining_markdown`'s report. title: the plot's title.

    Returns:
        :class:`~replearn.infra.stage_outputs.Mined`: the table and the ``mining.*`` figures (``seconds`` too).
    """
    write_mined(out_path, refresh.triplets.to_arrow(ids=ids, extra={**metadata, "mlflow_run_id": run_id,
                                                                     "margin": refresh.stats.margin}))
    metrics = {**refresh.stats.metrics(), "seconds": refresh.seconds}
    log_metrics(tracking_uri, run_id, {f"mining.{k}": v for k, v in metrics.items()})
    c = client(tracking_uri)
    c.log_figure(run_id, mining_hardness_figure(refresh.stats, title), "mining/hardness.png")
    c.log_text(run_id, markdown, "mining/summary.md")
    create_markdown_artifact(markdown=markdown, key=ARTIFACT_KEY,
                             description="Hard negatives mined from an index over the training set")
    s = refresh.stats
    get_run_logger().info("mined %d triplets in %.1f s: %.1f %% violate the margin %.4g, the guard removed %d "
                          "same-class candidates", s.triplets, refresh.seconds, 100 * s.margin_violations, s.margin,
                          s.guard_removed)
    return Mined(path=out_path, stats=metrics)


def log_refresh(tracking_uri: str, run_id: str, refresh: MiningRefresh) -> None:
    """A train stage's refresh: its statistics and time as ``train.mining.*`` at the epoch that trains on it."""
    log_metrics(tracking_uri, run_id, {**{f"train.mining.{k}": v for k, v in refresh.stats.metrics().items()},
                                       "train.mining.seconds": refresh.seconds}, step=refresh.epoch)


def stage_triplets(mined_path: str, ids: np.ndarray | None, margin: float, tracking_uri: str,
                   run_id: str) -> MinedTriplets:
    """The mine stage's table (``mined_path``) in positions (``ids``: the ids it was written with, None: positions),
    for the first epoch; its statistics against ``margin`` logged as ``train.mining.*`` at epoch 1.

    Raises:
        FileNotFoundError: no table at ``mined_path``.
        ReplearnInputError: it was mined over other data (an id not in ``ids``).
    """
    mined = MinedTriplets.from_arrow(*read_mined(mined_path), ids=ids)
    stats = mining_stats(mined, margin).metrics()
    log_metrics(tracking_uri, run_id, {f"train.mining.{k}": v for k, v in stats.items()}, step=1)
    return mined
