"""Pair and triplet miners over a labelled batch: they return index tuples, never losses.

As in pytorch-metric-learning, a miner looks at a batch of B embeddings and its
labels and returns int64 index tensors into the batch:

* pairs: ``(a, p)`` (same label, ``a != p``) or ``(a, n)`` (different labels);
* triplets: ``(a, p, n)``, each of length T, with ``y[a] == y[p]``, ``a != p``,
  ``y[a] != y[n]``.

Losses in :mod:`replearn.lib.metric.losses` accept these tuples. Miners run
under ``torch.no_grad()``: selection is not differentiated; the loss recomputes
distances with gradient.

Miners:

* :func:`all_triplets`: every valid triplet, T = sum_a |P(a)| |N(a)|.
* :func:`batch_hard`: per anchor, the farthest positive and the nearest
  negative (Hermans, Beyer & Leibe 2017, "In Defense of the Triplet Loss for
  Person Re-Identification", arXiv:1703.07737, eq. 5). T <= B.
* :func:`semi_hard`: triplets with ``D[a,p] < D[a,n] < D[a,p] + margin``
  (Schroff, Kalenichenko & Philbin 2015, "FaceNet", CVPR, sec. 3.2): the
  negative is farther than the positive but still inside the margin, so it gives
  a gradient without being the (often mislabelled or collapsing) hardest one.
  FaceNet picks such negatives per (a, p); we return all of them, like
  pytorch-metric-learning's ``TripletMarginMiner(type_of_triplets="semihard")``
  (which, unlike us, also admits ``D[a,n] == D[a,p] + margin``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.distances import DistanceKind, pairwise_distance

Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
Pairs = tuple[torch.Tensor, torch.Tensor]


def encode_labels(labels: torch.Tensor | np.ndarray | Sequence, device: torch.device | str | None = None) -> torch.Tensor:
    """Class labels of any hashable kind -> int64 tensor (B,) of class codes.

    Integer (or bool, or integral float) labels keep their values; strings and
    other objects are replaced by codes 0..K-1 in sorted order of the distinct
    labels (objects sorted by ``repr``). Only equality between codes matters to the miners and losses.

    Raises:
        ReplearnInputError: labels that are not one-dimensional, missing labels
            (None, NaN), or non-integral float labels.
    """
    if isinstance(labels, torch.Tensor):
        if labels.dim() != 1:
            raise ReplearnInputError(f"labels must be one-dimensional (one per embedding), got shape {tuple(labels.shape)}")
        if labels.dtype.is_floating_point:
            if not bool(torch.isfinite(labels).all()) or not bool((labels == labels.round()).all()):
                raise ReplearnInputError("float labels must be whole numbers without NaN; pass integer class ids or strings")
        out = labels.long()
        return out if device is None else out.to(device)
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ReplearnInputError(f"labels must be one-dimensional (one per embedding), got shape {arr.shape}")
    if arr.dtype.kind in "iub":
        codes = arr.astype(np.int64)
    elif arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not (arr == np.round(arr)).all():
            raise ReplearnInputError("float labels must be whole numbers without NaN; pass integer class ids or strings")
        codes = arr.astype(np.int64)
    elif arr.dtype.kind in "USa":
        codes = np.unique(arr, return_inverse=True)[1].reshape(-1).astype(np.int64)
    else:  # object: any hashable; None / NaN are missing labels, not a class
        values = arr.tolist()
        for i, v in enumerate(values):
            if v is None or (isinstance(v, float) and v != v):
                raise ReplearnInputError(f"label at row {i} is missing ({v!r}); drop the row or give it a class")
        try:
            index = {v: k for k, v in enumerate(sorted(set(values), key=repr))}
        except TypeError as e:
            raise ReplearnInputError(f"labels must be hashable (strings or integers): {e}") from None
        codes = np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values))
    return torch.from_numpy(codes).to(device) if device is not None else torch.from_numpy(codes)


def check_labels(embeddings: torch.Tensor, labels) -> torch.Tensor:
    """Encoded labels (B,) on the embeddings' device, after checking embeddings are (B, D) with one label per row."""
    y = encode_labels(labels, device=embeddings.device)
    if embeddings.dim() != 2:
        raise ReplearnInputError(f"embeddings must be (batch, dim), got shape {tuple(embeddings.shape)}")
    if y.numel() != embeddings.size(0):
        raise ReplearnInputError(f"{embeddings.size(0)} embeddings but {y.numel()} labels; give one label per row")
    return y


def _masks(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(pos, neg) boolean (B, B) masks: pos = same label and not the diagonal; neg = different label."""
    same = y.unsqueeze(0) == y.unsqueeze(1)                                      # (B, B)
    eye = torch.eye(y.numel(), dtype=torch.bool, device=y.device)
    return same & ~eye, ~same


def positive_pairs(labels) -> Pairs:
    """All ordered pairs ``(a, p)`` with ``y[a] == y[p]`` and ``a != p``, row-major order; each (P,) int64."""
    pos, _ = _masks(encode_labels(labels))
    a, p = torch.where(pos)
    return a, p


def negative_pairs(labels) -> Pairs:
    """All ordered pairs ``(a, n)`` with ``y[a] != y[n]``, row-major order; each (N,) int64."""
    _, neg = _masks(encode_labels(labels))
    a, n = torch.where(neg)
    return a, n


def all_triplets(labels) -> Triplets:
    """Every triplet ``(a, p, n)``: ``y[a] == y[p]``, ``a != p``, ``y[a] != y[n]``.

    Sorted lexicographically by (a, p, n). T = sum_a |P(a)| * |N(a)|, e.g. about
    1.5 million for B = 256 in 10 balanced classes; memory is O(T), not O(B^3).
    """
    y = encode_labels(labels)
    pos, neg = _masks(y)
    a_pp, p_pp = torch.where(pos)                                                # (P,), sorted by anchor
    _, n_all = torch.where(neg)                                                  # negatives, grouped by anchor
    n_cnt = neg.sum(dim=1)                                                       # (B,) |N(a)|
    n_start = torch.cumsum(n_cnt, 0) - n_cnt                                     # (B,) first negative of a
    rep = n_cnt[a_pp]                                                            # (P,) triplets per (a, p)
    a = a_pp.repeat_interleave(rep)                                              # (T,)
    p = p_pp.repeat_interleave(rep)                                              # (T,)
    first = torch.cumsum(rep, 0) - rep                                           # (P,) where each (a, p) block starts
    within = torch.arange(a.numel(), device=y.device) - first.repeat_interleave(rep)
    n = n_all[n_start[a] + within]                                               # (T,)
    return a, p, n


@torch.no_grad()
def batch_hard(embeddings: torch.Tensor, labels, distance: DistanceKind = "euclidean") -> Triplets:
    """Batch-hard triplets (Hermans et al. 2017): for each anchor a with a positive and a negative,

        p(a) = argmax_{p in P(a)} D[a, p],   n(a) = argmin_{n in N(a)} D[a, n].

    Args:
        embeddings: (B, D).
        labels: (B,) class labels (any kind :func:`encode_labels` takes).
        distance: kind for :func:`pairwise_distance`.

    Returns:
        ``(a, p, n)``, each (T,) int64 with T <= B, anchors ascending. Ties go to
        the lowest index. Anchors whose class has one member, or a batch of one
        class, give no triplet.
    """
    y = check_labels(embeddings, labels)
    D = pairwise_distance(embeddings.detach(), kind=distance)                    # (B, B)
    pos, neg = _masks(y)
    valid = pos.any(dim=1) & neg.any(dim=1)                                      # (B,)
    p = D.masked_fill(~pos, float("-inf")).argmax(dim=1)                        # (B,) hardest positive
    n = D.masked_fill(~neg, float("inf")).argmin(dim=1)                         # (B,) hardest negative
    a = torch.where(valid)[0]
    return a, p[a], n[a]


@torch.no_grad()
def semi_hard(embeddings: torch.Tensor, labels, distance: DistanceKind = "euclidean", margin: float = 0.2) -> Triplets:
    """Semi-hard triplets (Schroff et al. 2015): all ``(a, p, n)`` with ``D[a,p] < D[a,n] < D[a,p] + margin``.

    Args:
        embeddings: (B, D).
        labels: (B,) class labels.
        distance: kind for :func:`pairwise_distance`.
        margin: the triplet margin alpha (> 0; FaceNet uses 0.2 on unit vectors).

    Returns:
        ``(a, p, n)``, each (T,) int64, sorted by (a, p, n); empty when none qualifies.
    """
    y = check_labels(embeddings, labels)
    D = pairwise_distance(embeddings.detach(), kind=distance)                    # (B, B)
    a, p, n = all_triplets(y)
    dp, dn = D[a, p], D[a, n]                                                    # (T,)
    keep = (dp < dn) & (dn < dp + margin)
    return a[keep], p[keep], n[keep]
