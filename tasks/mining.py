"""Prefect task: the metric flow's ``mine-negatives`` stage, hard negatives from an index over the training set.

It runs before training when ``mining`` is ``index`` or ``both`` and makes the
mining a person can look at: the Parquet table of triplets, statistics in
MLflow, a hardness histogram and a Prefect markdown artifact. It mines with
the encoder training starts from (:func:`replearn.tasks.metric.initial_encoder`:
the seeded fresh encoder, or the warm start's), with the settings, seed and
epoch of the trainer's first refresh; the train stage takes its table as an
input and trains its first epoch on exactly those triplets
(lib/metric/mining_refresh.py; the trainer's later refreshes are logged by the
train stage as ``train.mining.*``).
"""

from __future__ import annotations

import numpy as np
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.logging import get_run_logger

from replearn.infra.caching import STAGE_CACHE
from replearn.infra.plots import mining_hardness_figure
from replearn.infra.stage_outputs import Mined
from replearn.infra.tracking import client, log_metrics
from replearn.lib.metric.index_mining import write_mined
from replearn.lib.metric.mining_refresh import MiningRefresh, refresh_mining
from replearn.lib.store.atomic import read_npz
from replearn.tasks.metric import initial_encoder

__all__ = ["HARDEST_SHOWN", "mine_negatives_task", "mining_markdown"]

HARDEST_SHOWN = 10
"""Triplets listed in the report: the hardest (smallest ``d_an - d_ap``)."""


@task(name="mine-negatives", cache_policy=STAGE_CACHE, persist_result=True)
def mine_negatives_task(data_path: str, train_config: dict, encoder: dict, out_path: str, tracking_uri: str,
                        run_id: str, init: str | None = None, init_from: str | None = None) -> Mined:
    """Embed the training images (``train_idx`` of ``images.npz``) with the initial encoder, mine triplets from a
    FAISS index over them (lib/metric/index_mining.py, the ``mining_*`` settings of ``train_config``) and report.

    Writes ``out_path`` (``mined.parquet``, atomically; ids are rows of ``images.npz``, the ``id`` column of the
    exported embeddings). Logs the ``mining.*`` metrics (``mining.margin_violations``, ``mining.guard_removed``,
    ``mining.seconds``, ...), ``mining/hardness.png`` and ``mining/summary.md`` to the MLflow run, and the markdown
    as the Prefect artifact ``mined-negatives``.

    Raises:
        ReplearnInputError: the settings do not allow index mining (e.g. ``loss`` supcon), or ``init`` does not
            fit this data's encoder (tasks/metric.py).
    """
    d = read_npz(data_path)
    model, cfg, _, _ = initial_encoder(int(d["images"].shape[-1]), train_config, encoder, init, init_from)
    tr = d["train_idx"]
    refresh = refresh_mining(model, d["images"][tr], d["labels"][tr], cfg, epoch=1)
    start = init_from or f"a fresh encoder (seed {cfg.seed})"
    write_mined(out_path, refresh.triplets.to_arrow(ids=tr, extra={
        "ids": "rows of images.npz (the id column of the exported embeddings)", "encoder": start,
        "mlflow_run_id": run_id, "margin": cfg.margin}))
    metrics = {**refresh.stats.metrics(), "seconds": refresh.seconds}
    log_metrics(tracking_uri, run_id, {f"mining.{k}": v for k, v in metrics.items()})
    text = mining_markdown(refresh, tr, d["labels"], [str(n) for n in d["names"]], start)
    c = client(tracking_uri)
    c.log_figure(run_id, mining_hardness_figure(refresh.stats, f"Negatives mined with {start}"), "mining/hardness.png")
    c.log_text(run_id, text, "mining/summary.md")
    create_markdown_artifact(markdown=text, key="mined-negatives",
                             description="Hard negatives mined from an index over the training set")
    s = refresh.stats
    get_run_logger().info("mined %d triplets in %.1f s: %.1f %% violate the margin %g, the guard removed %d "
                          "same-label candidates", s.triplets, refresh.seconds, 100 * s.margin_violations, s.margin,
                          s.guard_removed)
    return Mined(path=out_path, stats=metrics)


def mining_markdown(refresh: MiningRefresh, ids: np.ndarray, labels: np.ndarray, names: list[str],
                    encoder: str) -> str:
    """The report a person reads: what was mined and how, the statistics, and the :data:`HARDEST_SHOWN` hardest
    triplets with their classes.

    Args:
        refresh: the mining (triplets in positions 0..N-1 of the training images).
        ids: (N,) the training images' rows in the data (the ids of the table).
        labels: class ids of every row of the data; ``names``: class names by id.
        encoder: which encoder mined (words).
    """
    m, s = refresh.triplets, refresh.stats
    lines = [
        "# Hard negatives mined from an index",
        "",
        f"Mined with {encoder} over {m.n:,} training images: the {m.negatives} nearest image(s) of another class "
        f"per anchor ({m.distance}; {m.k} neighbours searched at once, {s.fallback_anchors:,} anchors searched "
        f"again among the other classes), a same-class positive drawn per anchor. {refresh.seconds:.2f} s.",
        "",
        "| statistic | value |",
        "|---|---|",
        f"| triplets | {s.triplets:,} |",
        f"| violate the margin {s.margin:g} (d_an < d_ap + margin) | {100 * s.margin_violations:.1f} % |",
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
        hardest = np.argsort(m.d_an - m.d_ap, kind="stable")[:HARDEST_SHOWN]
        lines += [f"The {len(hardest)} hardest triplets (ids: rows of the data):", "",
                  "| anchor | positive | negative | anchor class | negative class | d_ap | d_an | rank |",
                  "|---|---|---|---|---|---|---|---|"]
        for t in hardest:
            a, p, n = (int(ids[v]) for v in (m.anchor[t], m.positive[t], m.negative[t]))
            lines.append(f"| {a} | {p} | {n} | {names[int(labels[a])]} | {names[int(labels[n])]} | "
                         f"{m.d_ap[t]:.3f} | {m.d_an[t]:.3f} | {m.negative_rank[t]} |")
    return "\n".join(lines) + "\n"
