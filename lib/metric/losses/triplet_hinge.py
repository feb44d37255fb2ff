"""Triplet hinge loss: the positive should be closer to the anchor than the negative by a margin.

For a triplet (a, p, n) with ``Dp = D[a, p]``, ``Dn = D[a, n]`` and margin m:

    l(a, p, n) = max(0, Dp - Dn + m)

(Weinberger & Saul 2009, "Distance Metric Learning for Large Margin Nearest
Neighbor Classification", JMLR; Schroff et al. 2015, "FaceNet", eq. 1.)
Three reductions over the T triplets, where P is the set of (a, p) pairs that
occur in at least one triplet and N(a, p) the negatives paired with them:

* ``"mean"`` (default): ``(1/T) sum_{(a,p,n)} l(a, p, n)``. Equals
  ``pytorch_metric_learning.losses.TripletMarginLoss(margin, distance=...,
  reducer=MeanReducer(), swap=False, smooth_loss=False)`` on the same triplets
  (its default ``AvgNonZeroReducer`` instead divides by the number of triplets
  with l > 0, which is recorded here as ``n_active``).
* ``"sum_negatives"`` (variant 1): ``(1/|P|) sum_{(a,p) in P} sum_{n in N(a,p)} l(a, p, n)``:
  every violating negative contributes; the average is over anchor-positive pairs.
* ``"max_negative"`` (variant 2): ``(1/|P|) sum_{(a,p) in P} max(0, max_{n in N(a,p)} (Dp - Dn) + m)``:
  only the hardest negative of each pair contributes (as in batch-hard,
  Hermans et al. 2017, eq. 5, there with the hardest positive too).

Ranges: ``margin`` >= 0; 0.05-0.2 for ``cosine_distance`` or Euclidean on unit
vectors (FaceNet: 0.2), about 1 for unnormalised Euclidean embeddings.

``n_valid`` is T for ``"mean"`` and |P| for the per-pair reductions.

Every triplet of a batch (labels, no ``indices``) is scored without listing the
T = sum_a |P(a)| |N(a)| triplets (about 1.5 million at B = 256, 10 classes).
Sort each anchor's negative distances, ``s_1 <= ... <= s_|N(a)|``, with prefix
sums ``S_j = s_1 + ... + s_j``; with ``k = #{n : Dn < Dp + m}`` (binary search),

    sum_{n in N(a)} max(0, Dp - Dn + m) = k (Dp + m) - S_k,

which autograd differentiates exactly (d/dDp = k; d/ds_j = -#{p : j <= k(a, p)}).
That is O(B^2 log B) time and O(B^2) memory instead of O(T); the sums run in
float64 (except on MPS) against cancellation. The hardest negative is ``s_1``.
"""

from __future__ import annotations

from typing import Literal

import torch

from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.distances import DistanceKind
from replearn.lib.metric.losses.base import PairGroups, TripletLoss

Reduction = Literal["mean", "sum_negatives", "max_negative"]


class TripletHingeLoss(TripletLoss):
    """Hinge triplet loss ``max(0, D[a,p] - D[a,n] + margin)``, reduced as the module docstring says.

    Args:
        margin: m >= 0.
        distance: kind for :func:`~replearn.lib.metric.distances.pairwise_distance`.
        reduction: ``"mean"`` | ``"sum_negatives"`` | ``"max_negative"``.

    ``forward(embeddings (B, D), labels (B,) | None, indices (a, p, n) | None) -> 0-dim``;
    afterwards ``n_valid`` (terms averaged) and ``n_active`` (triplets with l > 0).
    """

    def __init__(self, margin: float = 0.2, distance: DistanceKind = "euclidean", reduction: Reduction = "mean"):
        super().__init__(distance)
        if reduction not in ("mean", "sum_negatives", "max_negative"):
            raise ReplearnInputError(f"unknown reduction {reduction!r}; choose mean, sum_negatives or max_negative")
        if margin < 0:
            raise ReplearnInputError(f"margin must be >= 0, got {margin}")
        self.margin = float(margin)
        self.reduction = reduction
        self.n_active = 0

    def reduce(self, dp: torch.Tensor, dn: torch.Tensor, a: torch.Tensor, p: torch.Tensor, B: int):
        hinge = torch.relu(dp - dn + self.margin)                                # (T,)
        self.n_active = int((hinge > 0).sum())
        if self.reduction == "mean":
            n = hinge.numel()
            return hinge.sum() / max(n, 1), n
        groups = PairGroups(a, p, B)
        if self.reduction == "sum_negatives":
            return hinge.sum() / max(groups.count, 1), groups.count
        per_pair = torch.relu(groups.max(dp - dn) + self.margin)                # (B*B,)
        per_pair = torch.where(groups.present, per_pair, torch.zeros_like(per_pair))
        return per_pair.sum() / max(groups.count, 1), groups.count

    def reduce_all(self, D: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor):
        """Every triplet of the batch via sorted negatives and prefix sums (module docstring)."""
        acc = D.dtype if D.device.type == "mps" else torch.float64
        Dx = D.to(acc)                                                           # (B, B)
        B = D.size(0)
        n_neg = neg.sum(dim=1)                                                   # (B,) |N(a)|
        has = pos & (n_neg > 0).unsqueeze(1)                                     # (B, B) pairs with a negative
        s, _ = Dx.masked_fill(~neg, float("inf")).sort(dim=1)                   # (B, B) negatives first, ascending
        thr = Dx + self.margin                                                   # (B, B) Dp + m
        k = torch.searchsorted(s.detach(), thr.detach())                         # (B, B) #{n : Dn < Dp + m}
        k = k.masked_fill(~has, 0)
        self.n_active = int(k.sum())
        n_pairs = int(has.sum())
        if self.reduction == "max_negative":
            per_pair = torch.relu(thr - s[:, :1])                                # (B, B) hinge at the nearest negative
            total = torch.where(has, per_pair, torch.zeros_like(per_pair)).sum()
            return (total / max(n_pairs, 1)).to(D.dtype), n_pairs
        S = torch.cat([Dx.new_zeros(B, 1), torch.where(torch.isinf(s), 0.0, s).cumsum(dim=1)], dim=1)  # (B, B+1)
        per_pair = k * thr - S.gather(1, k)                                      # (B, B) sum_n hinge
        total = torch.where(has, per_pair, torch.zeros_like(per_pair)).sum()
        if self.reduction == "mean":
            T = int((pos.sum(dim=1) * n_neg).sum())
            return (total / max(T, 1)).to(D.dtype), T
        return (total / max(n_pairs, 1)).to(D.dtype), n_pairs

    def extra_repr(self) -> str:
        return f"margin={self.margin}, distance={self.distance!r}, reduction={self.reduction!r}"
