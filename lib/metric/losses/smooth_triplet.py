"""Smooth triplet losses: the hinge replaced by a soft-plus, or by a softmax over the negatives.

With ``Dp = D[a, p]``, ``Dn = D[a, n]``, temperature tau > 0, for each
anchor-positive pair (a, p) and its negatives N(a, p) (all negatives of a when
the loss builds every triplet from labels):

* ``form="softplus"`` (one-vs-one): ``sum_{n in N(a,p)} tau * log(1 + exp((Dp - Dn) / tau))``.
  Sohn 2016 ("Improved Deep Metric Learning with Multi-class N-pair Loss
  Objective", NeurIPS), eq. 3 with one negative: the logistic (smooth) triplet
  loss, summed over the negatives; tau -> 0 gives the hinge with margin 0.
  (Hermans et al. 2017's "soft-margin" is the tau = 1 case.)
* ``form="softmax"`` (one-vs-all, the (N+1)-tuplet / N-pair loss, Sohn 2016 eq. 3-4):

      -log( exp(-Dp/tau) / (exp(-Dp/tau) + sum_{n in N(a,p)} exp(-Dn/tau)) )
      = log(1 + sum_n exp((Dp - Dn)/tau))
      = softplus(Dp/tau + logsumexp_n(-Dn/tau)),

  the cross-entropy of picking p among {p} ∪ N(a, p) with logits ``-D/tau``.

Both are averaged over the anchor-positive pairs (``n_valid`` = their number).
For every triplet of a batch (labels, no ``indices``), the softmax form needs
one ``logsumexp`` per anchor, O(B^2); the soft-plus form lists the triplets, O(T).
tau: about 0.05-0.5 for ``cosine_distance``; about 1 for Euclidean.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.distances import DistanceKind
from replearn.lib.metric.losses.base import PairGroups, TripletLoss


class SmoothTripletLoss(TripletLoss):
    """Soft-plus or softmax triplet loss (module docstring), averaged over (anchor, positive) pairs.

    Args:
        tau: temperature > 0.
        distance: kind for :func:`~replearn.lib.metric.distances.pairwise_distance`.
        form: ``"softplus"`` | ``"softmax"``.

    ``forward(embeddings (B, D), labels (B,) | None, indices (a, p, n) | None) -> 0-dim``.
    """

    def __init__(self, tau: float = 1.0, distance: DistanceKind = "euclidean",
                 form: Literal["softplus", "softmax"] = "softplus"):
        super().__init__(distance)
        if form not in ("softplus", "softmax"):
            raise ReplearnInputError(f"unknown form {form!r}; choose softplus or softmax")
        if not tau > 0:
            raise ReplearnInputError(f"tau must be > 0, got {tau}")
        self.tau = float(tau)
        self.form = form

    def reduce(self, dp: torch.Tensor, dn: torch.Tensor, a: torch.Tensor, p: torch.Tensor, B: int):
        groups = PairGroups(a, p, B)
        x = (dp - dn) / self.tau                                                 # (T,)
        if self.form == "softplus":
            total = (self.tau * F.softplus(x)).sum()
        else:
            per_pair = F.softplus(groups.logsumexp(x))                           # (B*B,) log(1 + sum_n e^x)
            total = torch.where(groups.present, per_pair, torch.zeros_like(per_pair)).sum()
        return total / max(groups.count, 1), groups.count

    def reduce_all(self, D: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor):
        """Softmax form over every triplet: ``softplus(Dp/tau + logsumexp_{n in N(a)}(-Dn/tau))``, O(B^2)."""
        if self.form != "softmax":
            return None
        has = pos & neg.any(dim=1, keepdim=True)                                 # (B, B)
        lse_neg = (-D / self.tau).masked_fill(~neg, torch.finfo(D.dtype).min).logsumexp(dim=1, keepdim=True)  # (B, 1)
        per_pair = F.softplus(D / self.tau + lse_neg)                            # (B, B)
        n_pairs = int(has.sum())
        return torch.where(has, per_pair, torch.zeros_like(per_pair)).sum() / max(n_pairs, 1), n_pairs

    def extra_repr(self) -> str:
        return f"tau={self.tau}, distance={self.distance!r}, form={self.form!r}"
