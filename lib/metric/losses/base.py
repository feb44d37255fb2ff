"""What every loss here shares: a ``distance=`` kind, counts of the terms it averaged, triplet plumbing.

A loss is an ``nn.Module`` whose ``forward`` takes embeddings and labels (or
index tuples from :mod:`replearn.lib.metric.miners`), never a model, and
returns a 0-dim tensor. After each call it records

* ``n_valid``: how many terms (triplets, anchor-positive pairs or anchors, as
  each loss documents) were averaged; 0 means the batch held nothing to learn
  from (no positive pair, or a single class) and the loss is an exact 0 that is
  still connected to the graph (``backward()`` works and gives zero gradients);
* ``empty``: ``n_valid == 0``.

Counting costs one device-to-host sync per call on a GPU.

Grouping triplets by their (anchor, positive) pair uses B*B buckets
(``a * B + p``) and ``index_add`` / ``scatter_reduce``: no sort, O(T + B^2).
"""

from __future__ import annotations

import torch
from torch import nn

from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.distances import DistanceKind, check_kind, pairwise_distance
from replearn.lib.metric.miners import Triplets, all_triplets, check_labels


class MetricLoss(nn.Module):
    """Base class: holds the distance kind and the last call's ``n_valid``."""

    def __init__(self, distance: DistanceKind):
        super().__init__()
        self.distance = check_kind(distance)
        self.n_valid = 0

    @property
    def empty(self) -> bool:
        """True when the last call had no valid term (its loss was an exact 0)."""
        return self.n_valid == 0

    def extra_repr(self) -> str:
        return f"distance={self.distance!r}"


class TemperatureLoss(MetricLoss):
    """Base of the contrastive losses: logits are ``-D / tau`` with temperature ``tau > 0``."""

    def __init__(self, temperature: float = 0.1, distance: DistanceKind = "cosine_distance"):
        super().__init__(distance)
        if not temperature > 0:
            raise ReplearnInputError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)


def resolve_triplets(embeddings: torch.Tensor, labels, indices: Triplets | None) -> Triplets:
    """The triplets a loss uses: ``indices`` if given (checked), else :func:`all_triplets` of ``labels``."""
    if embeddings.dim() != 2:
        raise ReplearnInputError(f"embeddings must be (batch, dim), got shape {tuple(embeddings.shape)}")
    if indices is None:
        if labels is None:
            raise ReplearnInputError("a triplet loss needs labels or an (a, p, n) index tuple from a miner")
        return all_triplets(check_labels(embeddings, labels))
    if len(indices) != 3:
        raise ReplearnInputError(f"indices must be a triplet (a, p, n), got {len(indices)} tensors")
    a, p, n = (torch.as_tensor(t, dtype=torch.long, device=embeddings.device) for t in indices)
    if not (a.dim() == p.dim() == n.dim() == 1 and a.numel() == p.numel() == n.numel()):
        raise ReplearnInputError(f"indices (a, p, n) must be 1-D and of equal length, got shapes "
                                 f"{tuple(a.shape)}, {tuple(p.shape)}, {tuple(n.shape)}")
    B = embeddings.size(0)
    idx = torch.cat([a, p, n])
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= B):
        raise ReplearnInputError(f"triplet indices must lie in [0, {B}) for a batch of {B} embeddings")
    return a, p, n


class TripletLoss(MetricLoss):
    """Base for losses over triplets: computes ``D``, gathers ``D[a,p]`` and ``D[a,n]``, calls :meth:`reduce`.

    ``forward(embeddings (B, D), labels (B,) | None = None, indices=(a, p, n) | None = None) -> 0-dim``.
    With ``indices`` the given triplets are used (``labels`` is then not needed);
    otherwise every triplet of the batch (:func:`all_triplets`). Subclasses
    implement ``reduce(dp (T,), dn (T,), a (T,), p (T,), B) -> (loss, n_valid)`` and may
    implement ``reduce_all(D (B, B), pos (B, B), neg (B, B))``, the same loss over every
    triplet of the batch computed without listing the T = O(B^3) triplets; it
    returns ``None`` where it has no such shortcut.
    """

    def forward(self, embeddings: torch.Tensor, labels=None, indices: Triplets | None = None) -> torch.Tensor:
        if indices is None and labels is not None:
            y = check_labels(embeddings, labels)                                 # (B,)
            D = pairwise_distance(embeddings, kind=self.distance)                # (B, B)
            same = y.unsqueeze(0) == y.unsqueeze(1)
            eye = torch.eye(y.numel(), dtype=torch.bool, device=y.device)
            out = self.reduce_all(D, same & ~eye, ~same)
            if out is not None:
                loss, self.n_valid = out
                return loss
            a, p, n = all_triplets(y)
        else:
            a, p, n = resolve_triplets(embeddings, labels, indices)
            D = pairwise_distance(embeddings, kind=self.distance)                # (B, B)
        dp, dn = D[a, p], D[a, n]                                                # (T,), (T,)
        loss, self.n_valid = self.reduce(dp, dn, a, p, embeddings.size(0))
        return loss

    def reduce(self, dp, dn, a, p, B) -> tuple[torch.Tensor, int]:
        raise NotImplementedError

    def reduce_all(self, D, pos, neg) -> tuple[torch.Tensor, int] | None:
        return None


class PairGroups:
    """Triplets grouped by their (anchor, positive) pair, for per-pair sums, maxima and log-sum-exps.

    ``g = a * B + p`` (T,) is each triplet's bucket among B*B; ``present`` (B*B,)
    marks the buckets that hold a triplet; ``count`` is how many do.
    """

    def __init__(self, a: torch.Tensor, p: torch.Tensor, B: int):
        self.g = a * B + p                                                       # (T,)
        self.size = B * B
        self.present = torch.zeros(self.size, dtype=torch.bool, device=a.device)
        self.present[self.g] = True
        self.count = int(self.present.sum())

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        """(B*B,) per-pair sum of ``x`` (T,); 0 in empty buckets."""
        return x.new_zeros(self.size).index_add(0, self.g, x)

    def max(self, x: torch.Tensor) -> torch.Tensor:
        """(B*B,) per-pair maximum of ``x`` (T,); 0 in empty buckets (gradient goes to the arg-max)."""
        m = x.new_full((self.size,), float("-inf")).scatter_reduce(0, self.g, x, "amax", include_self=True)
        return torch.where(self.present, m, torch.zeros_like(m))

    def logsumexp(self, x: torch.Tensor) -> torch.Tensor:
        """(B*B,) per-pair ``log sum exp x`` (T,), max-shifted for stability; 0 in empty buckets."""
        m = self.max(x.detach())                                                 # (B*B,) shift, 0 where empty
        s = x.new_zeros(self.size).index_add(0, self.g, torch.exp(x - m[self.g]))
        s = torch.where(self.present, s, torch.ones_like(s))                     # log(1) = 0 where empty
        return s.log() + m
