"""Supervised contrastive loss, L^sup_out (Khosla et al. 2020).

Khosla, Teterwak, Wang, Sarna, Tian, Isola, Maschinot, Liu & Krishnan 2020,
"Supervised Contrastive Learning", NeurIPS, eq. 2. For a batch of N embeddings
with labels, anchor i, its positives P(i) = {p != i : y_p = y_i} and
A(i) = {k != i}:

    l(i) = -(1/|P(i)|) sum_{p in P(i)} log( exp(s(i,p)/tau) / sum_{k in A(i)} exp(s(i,k)/tau) )
    L    = mean of l(i) over the valid anchors (|P(i)| > 0 and at least one negative)

with similarity ``s = -D`` (``cosine_distance`` gives the paper's cosine of
normalised projections, up to a constant that cancels). For several views per
item, concatenate them and repeat the labels (views of one item are positives).
Equals ``pytorch_metric_learning.losses.SupConLoss(temperature)`` (whose
``AvgNonZeroReducer`` averages over the same anchors).

tau: the paper uses 0.1 (0.07 in some runs); ``n_valid`` = number of valid anchors.
"""

from __future__ import annotations

import torch

from replearn.lib.metric.distances import pairwise_distance
from replearn.lib.metric.losses.base import TemperatureLoss
from replearn.lib.metric.miners import check_labels


class SupConLoss(TemperatureLoss):
    """L^sup_out. ``forward(embeddings (N, D), labels (N,)) -> 0-dim`` (0 when no anchor is valid).

    Args:
        temperature: tau > 0.
        distance: kind for :func:`~replearn.lib.metric.distances.pairwise_distance`;
            logits are ``-D / tau``.
    """

    def forward(self, embeddings: torch.Tensor, labels) -> torch.Tensor:
        y = check_labels(embeddings, labels)                                     # (N,)
        N = y.numel()
        logits = -pairwise_distance(embeddings, kind=self.distance) / self.temperature   # (N, N)
        same = y.unsqueeze(0) == y.unsqueeze(1)                                  # (N, N)
        eye = torch.eye(N, dtype=torch.bool, device=y.device)
        pos = same & ~eye
        # Denominator over A(i) = k != i; the finite fill (not -inf) keeps a row with no k finite.
        lse = logits.masked_fill(eye, torch.finfo(logits.dtype).min).logsumexp(dim=1, keepdim=True)  # (N, 1)
        log_prob = (logits - lse).masked_fill(~pos, 0.0)                         # (N, N), 0 off P(i)
        n_pos = pos.sum(dim=1)                                                   # (N,)
        valid = (n_pos > 0) & (~same).any(dim=1)                                 # (N,)
        per_anchor = -log_prob.sum(dim=1) / n_pos.clamp(min=1)                   # (N,)
        per_anchor = per_anchor.masked_fill(~valid, 0.0)
        self.n_valid = int(valid.sum())
        return per_anchor.sum() / max(self.n_valid, 1)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, distance={self.distance!r}"
