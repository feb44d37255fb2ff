"""NT-Xent / InfoNCE on two views of a batch (SimCLR).

Chen, Kornblith, Norouzi & Hinton 2020, "A Simple Framework for Contrastive
Learning of Visual Representations", ICML, eq. 1 (InfoNCE: van den Oord et al.
2018, arXiv:1807.03748). Stack the views ``z = [z1; z2]`` (2B, D); view i and
view i+B are the positive pair, every other of the 2B - 2 rows a negative:

    l(i) = -log( exp(s(i, j(i))/tau) / sum_{k != i} exp(s(i, k)/tau) ),   j(i) = (i + B) mod 2B
    L    = (1 / 2B) sum_{i=1}^{2B} l(i)

with similarity ``s = -D`` (for ``cosine_distance``, ``s = cos - 1``: the
constant cancels in the softmax, so this is SimCLR's cosine similarity).
Equals ``pytorch_metric_learning.losses.NTXentLoss(temperature)`` on
``cat([z1, z2])`` with labels ``cat([arange(B), arange(B)])``.

tau: SimCLR uses 0.1-0.5 (0.5 at batch 256 in their table 5); smaller tau
weights hard negatives more.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.distances import pairwise_distance
from replearn.lib.metric.losses.base import TemperatureLoss


class InfoNCELoss(TemperatureLoss):
    """NT-Xent over two views. ``forward(z1 (B, D), z2 (B, D)) -> 0-dim``.

    Row i of ``z1`` and row i of ``z2`` are two views of the same item.
    ``n_valid`` = 2B anchors, or 0 when B < 2 (no negatives: the loss is 0).

    Args:
        temperature: tau > 0.
        distance: kind for :func:`~replearn.lib.metric.distances.pairwise_distance`;
            logits are ``-D / tau``.
    """

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        if z1.dim() != 2 or z1.shape != z2.shape:
            raise ReplearnInputError(f"the two views must both be (batch, dim), got shapes "
                                     f"{tuple(z1.shape)} and {tuple(z2.shape)}")
        B = z1.size(0)
        z = torch.cat([z1, z2], dim=0)                                           # (2B, D)
        logits = -pairwise_distance(z, kind=self.distance) / self.temperature    # (2B, 2B)
        eye = torch.eye(2 * B, dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(eye, torch.finfo(logits.dtype).min)          # k != i
        target = (torch.arange(2 * B, device=z.device) + B) % (2 * B)            # (2B,) j(i)
        self.n_valid = 2 * B if B >= 2 else 0
        if B == 0:
            return z.sum() * 0.0
        return F.cross_entropy(logits, target)                                   # mean over 2B anchors

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, distance={self.distance!r}"
