"""Hard-negative captions for the two-tower model, mined from an index over the training captions with the current
towers.

In a random batch of B pairs each image's negatives are the B - 1 other
captions, mostly easy ones. Index mining (ANCE, Xiong et al. 2021, sec. 3-4:
negatives retrieved from an index of the whole corpus with the encoder being
trained, refreshed during training) finds, for every training image, the
captions of the whole training set its image tower and text tower put nearest,
and the trainer puts them in the image's batch (lib/clip/trainer.py), so the
symmetric contrastive loss scores the image against them.

:func:`refresh_caption_mining` is one refresh:

1. **Embed** every training image and the epoch's caption of every pair with the
   towers as they are (eval mode, no gradient: batch norm uses its running
   statistics; :meth:`~replearn.lib.clip.model.TwoTower.embed_images` /
   ``embed_texts``), both (N, D) unit rows.
2. **Mine** (:func:`~replearn.lib.metric.index_mining.mine_pair_negatives`, the
   metric family's miner, on pairs): an exact FAISS index over the embeddings of
   the M distinct caption texts (:func:`caption_key`; generated captions repeat:
   "a photo of the digit three" is the caption of many pairs, and copies would
   only tie), searched with the N image embeddings, by cosine (the model's own
   similarity: the logits are ``s * cos``). Image i's positive is its own
   caption; its negatives are its ``mining_negatives`` nearest captions whose
   class differs from pair i's (:func:`caption_classes`: the guard; a caption
   text's class is that of its first pair), each a distinct text; a negative
   caption stands for the first pair (lowest row) whose caption it is.
3. **Measure** (:func:`~replearn.lib.metric.mining_stats.mining_stats`) with the
   distance ``1 - cos`` and the margin ``1 / s`` (:func:`caption_margin`): a
   triplet "violates the margin" when its negative caption is within one logit of
   the image's own caption (``s (cos_p - cos_n) < 1``), i.e. the negative's
   softmax weight is more than ``e^-1`` of the positive's.

The ids of the table are pair rows: ``anchor_id`` the image of pair i,
``positive_id`` = ``anchor_id`` (its own caption), ``negative_id`` the first pair
whose caption is the negative; ``negative_rank`` the rank among the distinct
captions (its own among them). Generated captions change every epoch
(lib/clip/pairs.py); a refresh mines the captions of the epoch it precedes, and
the epochs until the next refresh train on those pair ids with their own
captions (the same class and attributes, another template).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np

from replearn.lib.clip.model import TwoTower
from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.index_mining import mine_pair_negatives
from replearn.lib.metric.mining_refresh import MiningRefresh, require_triplets
from replearn.lib.metric.mining_stats import mining_stats

__all__ = ["CAPTION_DISTANCE", "caption_classes", "caption_key", "caption_margin", "refresh_caption_mining"]

CAPTION_DISTANCE = "cosine_distance"
"""The distance of CLIP's mining and its table: ``1 - cos`` (the towers' rows are unit vectors)."""


def caption_key(caption: str) -> str:
    """What makes two captions the same text: case folded, runs of white space one space, stripped."""
    return " ".join(str(caption).casefold().split())


def caption_classes(captions: Sequence[str], labels: np.ndarray | None = None) -> np.ndarray:
    """The class of each pair, for the false-negative guard: no caption of the image's class is its negative.

    Args:
        captions: N captions (pair i's caption).
        labels: (N,) integer class ids where known (the digits' labels: every caption of class 7 names "seven" or
            "7", so the class text is the label's), or None (a user's file): then pairs whose captions read the
            same (:func:`caption_key`) are one class, so a copy of an image's caption is never its negative.

    Returns:
        int64 (N,) class ids (the labels, or 0..C-1 over the distinct caption texts in sorted order).

    Raises:
        ReplearnInputError: ``labels`` not (N,) integers.
    """
    n = len(captions)
    if labels is not None:
        y = np.asarray(labels)
        if y.shape != (n,) or y.dtype.kind not in "iu":
            raise ReplearnInputError(f"caption classes: labels must be (N,) integer class ids, one per caption; got "
                                     f"{y.dtype} shape {y.shape} for {n} captions")
        return y.astype(np.int64)
    texts = np.array([caption_key(c) for c in captions], dtype=np.str_)
    return np.unique(texts, return_inverse=True)[1].reshape(-1).astype(np.int64)


def caption_margin(model: TwoTower) -> float:
    """``1 / s`` (s the clamped logit scale, 1..100): one logit in the distance ``1 - cos``, the margin the mining
    statistics of CLIP are measured against (module docstring, step 3)."""
    return 1.0 / model.scale


def refresh_caption_mining(model: TwoTower, images: np.ndarray, captions: Sequence[str], classes: np.ndarray, *,
                           k: int, negatives: int, epoch: int) -> MiningRefresh:
    """Embed the training pairs with ``model`` as it is now and mine each image's hard-negative captions (module
    docstring, steps 1-3).

    Args:
        model: the two towers (embedded in eval mode without gradients, mode restored).
        images: float32 (N, C, H, W) in [0, 1], the training images. captions: N captions (this epoch's).
        classes: int64 (N,) :func:`caption_classes` of the pairs.
        k: captions searched per image at once (``mining_k``), >= 1. negatives: kept per image (``mining_negatives``).
        epoch: >= 1, the first epoch that trains on them.

    Returns:
        :class:`~replearn.lib.metric.mining_refresh.MiningRefresh` (triplets in pair rows, statistics against
        :func:`caption_margin`, the time of the embedding, the search and the statistics).

    Raises:
        ReplearnInputError: a count of images, captions and classes that differ, NaN/Inf embeddings
            (:func:`~replearn.lib.metric.index_mining.mine_pair_negatives`), captions of a single class or text,
            no triplet.
        CaptionError: a caption with no token.
    """
    if not len(images) == len(captions) == len(classes):
        raise ReplearnInputError(f"caption mining needs one caption and class per image: {len(images)} images, "
                                 f"{len(captions)} captions, {len(classes)} classes")
    t0 = time.perf_counter()
    y = np.asarray(classes, dtype=np.int64)
    _, first, text_of = np.unique(np.array([caption_key(c) for c in captions], dtype=np.str_), return_index=True,
                                  return_inverse=True)                           # (M,) first pair, (N,) its text
    if len(first) < 2 or len(np.unique(y)) < 2:
        raise ReplearnInputError(
            f"caption mining found no caption that can be a negative: the {len(captions)} training pairs hold "
            f"{len(first)} distinct caption(s) of {len(np.unique(y))} class(es), and a caption of the image's own "
            f"class is never its negative; use pairs with captions of 2 or more classes, or --mining batch")
    zi = model.embed_images(images)                                              # (N, D) unit rows
    zt = model.embed_texts([captions[i] for i in first], where=f"the training captions (epoch {epoch})")  # (M, D)
    mined = mine_pair_negatives(zi, zt, y, y[first], text_of.reshape(-1), k=k, negatives=negatives,
                                distance=CAPTION_DISTANCE)
    # caption rows -> pair rows: the positive is the image's own pair, a negative caption its first pair
    mined = dataclasses.replace(mined, positive=mined.anchor.copy(), negative=first[mined.negative].astype(np.int64))
    require_triplets(mined, "training pairs", "captions of 2 or more classes")
    stats = mining_stats(mined, caption_margin(model))
    return MiningRefresh(int(epoch), mined, stats, time.perf_counter() - t0)
