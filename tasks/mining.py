"""Prefect tasks: the mine stages, hard negatives from an index over the training set (metric and CLIP flows).

They run before training when ``mining`` is ``index`` or ``both`` and make the
mining a person can look at (infra/mining_report.py): the Parquet table of
triplets, statistics in MLflow, a hardness histogram and a Prefect markdown
artifact. Each mines with the model training starts from (the seeded fresh
model, or the warm start's), with the settings and epoch of the trainer's first
refresh; the train stage takes the table as an input and trains its first
epoch on exactly those triplets (its later refreshes are logged as
``train.mining.*``).

* ``mine-negatives`` (metric): the training images' nearest images of another
  class (lib/metric/index_mining.py, lib/metric/mining_refresh.py).
* ``mine-caption-negatives`` (CLIP): each training image's nearest captions of
  another class (lib/clip/mining.py), with the two towers.
"""

from __future__ import annotations

import numpy as np
from prefect import task

from replearn.infra.caching import STAGE_CACHE
from replearn.infra.stage_outputs import Mined
from replearn.lib.clip.mining import caption_classes, refresh_caption_mining
from replearn.lib.clip.model import ClipConfig
from replearn.lib.clip.pairs import epoch_captions
from replearn.lib.metric.mining_refresh import refresh_mining
from replearn.lib.store.atomic import read_npz
from replearn.tasks.clip import initial_model
from replearn.tasks.metric import initial_encoder
from replearn.infra.mining_report import mining_markdown, report_mining

__all__ = ["mine_caption_negatives_task", "mine_negatives_task"]


@task(name="mine-negatives", cache_policy=STAGE_CACHE, persist_result=True)
def mine_negatives_task(data_path: str, train_config: dict, encoder: dict, out_path: str, tracking_uri: str,
                        run_id: str, init: str | None = None, init_from: str | None = None) -> Mined:
    """Embed the training images (``train_idx`` of ``images.npz``) with the initial encoder, mine triplets from a
    FAISS index over them (lib/metric/index_mining.py, the ``mining_*`` settings of ``train_config``) and report.

    Writes ``out_path`` (``mined.parquet``, atomically; ids are rows of ``images.npz``, the ``id`` column of the
    exported embeddings). Logs the ``mining.*`` metrics (``mining.margin_violations``, ``mining.guard_removed``,
    ``mining.seconds``, ...), ``mining/hardness.png`` and ``mining/summary.md`` to the MLflow run, and the markdown
    as the Prefect artifact ``mined-negatives`` (infra/mining_report.py).

    Raises:
        ReplearnInputError: the settings do not allow index mining (e.g. ``loss`` supcon), or ``init`` does not
            fit this data's encoder (tasks/metric.py).
    """
    d = read_npz(data_path)
    model, cfg, _, _ = initial_encoder(int(d["images"].shape[-1]), train_config, encoder, init, init_from)
    tr, y = d["train_idx"], d["labels"]
    refresh = refresh_mining(model, d["images"][tr], y[tr], cfg, epoch=1)
    start = init_from or f"a fresh encoder (seed {cfg.seed})"
    names = [str(n) for n in d["names"]]
    m = refresh.triplets
    intro = (f"Mined with {start} over {m.n:,} training images: the {m.negatives} nearest image(s) of another class "
             f"per anchor, a same-class positive drawn per anchor (ids: rows of the data);")
    hardest = (("anchor", "positive", "negative", "anchor class", "negative class"),
               lambda t: (int(tr[m.anchor[t]]), int(tr[m.positive[t]]), int(tr[m.negative[t]]),
                          names[int(y[tr[m.anchor[t]]])], names[int(y[tr[m.negative[t]]])]))
    return report_mining(refresh, out_path, tr, {"ids": "rows of images.npz (the id column of the exported "
                                                          "embeddings)", "encoder": start},
                         mining_markdown(refresh, intro, hardest), f"Negatives mined with {start}", tracking_uri,
                         run_id)


@task(name="mine-caption-negatives", cache_policy=STAGE_CACHE, persist_result=True)
def mine_caption_negatives_task(data_path: str, config: dict, out_path: str, tracking_uri: str, run_id: str,
                                init: str | None = None, init_from: str | None = None) -> Mined:
    """Embed the training pairs of ``pairs.npz`` (their images, and the captions of epoch 1) with the initial towers,
    mine each image's nearest captions of another class from a FAISS index over the captions (lib/clip/mining.py,
    the ``mining_*`` settings of ``config``) and report, as the metric flow's ``mine-negatives`` does.

    The table's ids are rows of the training pairs (``train_images`` / ``train_captions``): ``anchor_id`` an
    image, ``positive_id`` = ``anchor_id`` (its own caption), ``negative_id`` the first pair whose caption is the
    negative; distances ``1 - cos``; the margin of the statistics is one logit, ``1 / s``.

    Raises:
        ReplearnInputError: ``init`` does not fit the towers this run builds (tasks/clip.py).
        CaptionError: a caption with no known token.
    """
    d = read_npz(data_path)
    cfg = ClipConfig.from_dict(config)
    model = initial_model(cfg, [str(c) for c in d["vocab_captions"]], init, init_from)
    captions = epoch_captions(d["train_captions"], 0)
    labels = d["train_labels"] if "train_labels" in d else None
    refresh = refresh_caption_mining(model, d["train_images"], captions, caption_classes(captions, labels),
                                     k=cfg.mining_k, negatives=cfg.mining_negatives, epoch=1)
    start = init_from or f"fresh towers (seed {cfg.seed})"
    m = refresh.triplets
    what = "class" if labels is not None else "caption text"
    intro = (f"Mined with {start} over {m.n:,} training pairs: for each image, the {m.negatives} nearest distinct "
             f"caption(s) of another {what} (ids: rows of the training pairs; a negative caption's first pair);")
    hardest = (("image", "its caption", "negative caption"),
               lambda t: (int(m.anchor[t]), captions[int(m.anchor[t])], captions[int(m.negative[t])]))
    return report_mining(refresh, out_path, None, {
        "ids": "rows of the training pairs (train_images, train_captions of pairs.npz); positive_id: the anchor's "
               "own caption; negative_id: the first pair whose caption (epoch 1's) is the negative",
        "model": start}, mining_markdown(refresh, intro, hardest), f"Captions mined with {start}", tracking_uri,
        run_id)
