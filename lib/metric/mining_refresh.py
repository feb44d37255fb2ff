"""One refresh of index-mined triplets: embed the training set with the current encoder, mine, measure.

ANCE (Xiong et al. 2021, sec. 4) refreshes its negatives with the encoder being
trained: negatives mined with the initial encoder go stale as it learns. The
metric trainer (:func:`replearn.lib.metric.trainer.train_metric`, ``mining``
``"index"`` / ``"both"``) calls :func:`refresh_mining` before epochs 1,
``1 + mining_refresh``, ...; the metric flow's ``mine-negatives`` stage calls it
with the initial encoder and ``epoch=1`` and the train stage's first epoch
trains on the table it writes (``train_metric(mined=...)``), which is what a
first refresh would have mined (same encoder, settings and seed).

A refresh embeds in eval mode without gradients
(:func:`~replearn.lib.metric.encoders.embed`: batch norm uses its running
statistics, the encoder's mode is restored), mines with the config's ``mining_k``,
``mining_negatives``, resolved distance and a seed drawn from ``(seed, epoch)``
(:func:`refresh_seed`), and measures the triplets against the config's margin
(:func:`~replearn.lib.metric.mining_stats.mining_stats`). The CLIP trainer
refreshes its hard-negative captions the same way (lib/clip/mining.py) and
returns the same :class:`MiningRefresh`.

:func:`mined_record` / :func:`mined_from_record` put the triplets in use into a
training checkpoint and back (both trainers), so a resumed run trains on them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.config import MetricTrainConfig
from replearn.lib.metric.encoders import embed
from replearn.lib.metric.index_mining import MinedTriplets, check_mined, mine_triplets
from replearn.lib.metric.mining_stats import MiningStats, mining_stats

__all__ = ["MiningRefresh", "mined_from_record", "mined_record", "refresh_mining", "refresh_seed"]


@dataclass(frozen=True)
class MiningRefresh:
    """The triplets of one refresh and what they look like.

    Attributes:
        epoch: 1-based number of the first epoch that trains on them.
        triplets: the mined triplets (positions in the training images given).
        stats: their statistics against the config's margin.
        seconds: wall-clock time of the refresh (embedding, index, search, statistics).
    """

    epoch: int
    triplets: MinedTriplets
    stats: MiningStats
    seconds: float


def refresh_seed(seed: int, epoch: int) -> int:
    """The seed of the positives drawn at the refresh before ``epoch`` (1-based): a function of ``(seed, epoch)``
    only, in [0, 2**31), so a resumed run and the mine stage draw what an uninterrupted run drew."""
    return int(np.random.SeedSequence([int(seed), 3, int(epoch)]).generate_state(1)[0] >> 1)


def refresh_mining(encoder: torch.nn.Module, images: np.ndarray | torch.Tensor, labels: np.ndarray,
                   config: MetricTrainConfig, epoch: int, device: str | torch.device | None = None) -> MiningRefresh:
    """Embed ``images`` with ``encoder`` as it is now and mine triplets over them with ``config``'s settings.

    Args:
        encoder: (B, C, H, W) -> (B, D) module; embedded in eval mode without gradients, mode restored.
        images: float32 (N, C, H, W), the training images. labels: int (N,) class ids.
        config: its ``mining_k``, ``mining_negatives``, ``resolved_distance``, ``margin`` and ``seed`` are used.
        epoch: >= 1, the first epoch that will train on these triplets (seeds the positives' draw).
        device: where to embed (default: the encoder's parameters' device).

    Raises:
        ReplearnInputError: the embeddings hold NaN/Inf, labels not (N,) integers
            (:func:`~replearn.lib.metric.index_mining.mine_triplets`); no triplet (:func:`require_triplets`).
    """
    t0 = time.perf_counter()
    z = embed(encoder, images, device=device)                                    # (N, D) float32
    mined = mine_triplets(z, labels, k=config.mining_k, negatives=config.mining_negatives,
                          distance=config.resolved_distance, seed=refresh_seed(config.seed, epoch))
    require_triplets(mined, "training images", "--train-classes 2 or more")
    stats = mining_stats(mined, config.margin)
    return MiningRefresh(int(epoch), mined, stats, time.perf_counter() - t0)


def require_triplets(mined: MinedTriplets, items: str, more: str) -> None:
    """Raise when mining found no triplet, so that a run never trains (and registers) an encoder on nothing.

    Args:
        mined: a mining result. items: what was mined over, for the message. more: how to get more classes.

    Raises:
        ReplearnInputError: no row; the message counts the anchors without positive and without negative and
            names the fix (more classes, ``more``, or ``--mining batch``).
    """
    if len(mined) == 0:
        raise ReplearnInputError(
            f"index mining found no triplet over {mined.n} {items}: {mined.anchors_without_negative} anchors have "
            f"nothing of another class to be a negative, {mined.anchors_without_positive} have no positive. It "
            f"needs 2 or more classes with 2 or more items each; use data with more classes ({more}) or "
            f"--mining batch")


_MINED_ARRAYS = ("anchor", "positive", "negative", "d_ap", "d_an", "negative_rank")


def mined_record(mined: MinedTriplets) -> dict:
    """The triplets in use as a checkpoint field: their arrays as CPU tensors (``torch.load(weights_only=True)``
    reads them) and their metadata (:meth:`MinedTriplets.metadata`)."""
    return {**{name: torch.from_numpy(np.ascontiguousarray(getattr(mined, name))) for name in _MINED_ARRAYS},
            **mined.metadata()}


def mined_from_record(record: dict) -> MinedTriplets:
    """:func:`mined_record` read back (tensors on any device)."""
    return MinedTriplets(**{k: (record[k].cpu().numpy() if k in _MINED_ARRAYS else record[k]) for k in record})


def refresh_due(mining: str, mining_refresh: int, epoch: int, current: MinedTriplets | None, given: bool) -> bool:
    """Whether a trainer mines before epoch ``epoch`` (0-based), the same rule for both families: with index mining
    before epochs 1, 1 + ``mining_refresh``, ... and whenever it holds no triplets, but never before an epoch 1
    that trains on triplets ``given`` (the mine stage's table)."""
    return mining != "batch" and not given and (epoch % mining_refresh == 0 or current is None)


def check_given(mined: MinedTriplets, mining: str, labels: np.ndarray | None, *, negatives: int, distance: str,
                where: str) -> None:
    """Refuse triplets given to a trainer (``where``) that ``mining`` does not use or that were not mined over its
    items with its settings (:func:`~replearn.lib.metric.index_mining.check_mined`).

    Raises:
        ReplearnInputError: naming what differs and the fix.
    """
    if mining == "batch":
        raise ReplearnInputError(f"{where}: mined triplets were given but mining='batch' does not use them; set "
                                 f"mining to 'index' or 'both', or pass mined=None")
    check_mined(mined, labels, negatives=negatives, distance=distance, where=where)
