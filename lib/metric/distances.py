"""Pairwise distances between embeddings, with one convention: larger = farther.

Every ``kind`` returns a *dissimilarity* matrix ``D`` of shape (B, M), so a loss
or miner written once ("the positive should be closer than the negative:
``D[a, p] < D[a, n]``") works with every kind. A similarity ``s`` is turned into
a dissimilarity by negation or ``1 - s``; either keeps the order of the pairs,
and a softmax over ``-D / tau`` is unchanged by the constant:

=====================  ==========================================  ==============
kind                   D[i, j]                                      range
=====================  ==========================================  ==============
``euclidean``          ``||x_i - y_j||_2``                          [0, inf)
``squared_euclidean``  ``||x_i - y_j||_2^2``                        [0, inf)
``cosine_distance``    ``1 - <x_i, y_j> / (||x_i|| ||y_j||)``       [0, 2]
``inner_product``      ``-<x_i, y_j>`` (negative similarity)        (-inf, inf)
=====================  ==========================================  ==============

This is pytorch-metric-learning's ``distance=`` object reduced to a string:
their ``LpDistance(normalize_embeddings=False)`` is ``euclidean``; their
``CosineSimilarity()`` (``is_inverted=True``) ranks pairs as ``cosine_distance``
does, and their ``distance.margin(ap, an)`` is our ``D[a, p] - D[a, n]`` for
both. Their ``LpDistance()`` normalises by default: pass ``l2_normalize(x)``
to ``euclidean`` to reproduce it.

Numerical safety:

* ``euclidean`` is computed as ``sqrt(||x||^2 + ||y||^2 - 2 <x, y>)`` (one
  matrix product; Euclidean-distance-matrix trick), with the squared distance
  clamped at 0 against round-off. The derivative of ``sqrt`` is infinite at 0,
  so entries with squared distance 0 (a point and itself, duplicate points, an
  all-zero batch) take a "double ``where``" path: value exactly 0, gradient
  exactly 0 (the sub-gradient), never NaN. When ``y`` is omitted (distances of a
  batch to itself) the diagonal is set to exactly 0. The expansion loses
  precision for points much closer than their norms (relative error about
  ``eps_dtype * ||x||^2 / D``); use float64 if that matters.
* ``l2_normalize`` divides by ``max(||x||, eps)``, so an all-zero row stays zero
  (no 0/0 NaN) and its gradient is finite.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.config import DISTANCES, DistanceKind  # noqa: F401  (declared once, with the config)


def l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Rows of ``x`` (B, D) scaled to unit L2 norm: ``x_i / max(||x_i||_2, eps)``.

    An all-zero row maps to an all-zero row (not NaN); the gradient there is
    finite (at most ``1 / eps`` times the upstream gradient). Same as
    ``torch.nn.functional.normalize(x, dim=-1)``, which pytorch-metric-learning uses.
    """
    return F.normalize(x, p=2.0, dim=-1, eps=eps)


def check_kind(kind: str) -> str:
    """Return ``kind`` if it is one of :data:`DISTANCES`, else raise ReplearnInputError."""
    if kind not in DISTANCES:
        raise ReplearnInputError(f"unknown distance {kind!r}; choose one of {', '.join(DISTANCES)}")
    return kind


def pairwise_distance(x: torch.Tensor, y: torch.Tensor | None = None, kind: DistanceKind = "euclidean") -> torch.Tensor:
    """Dissimilarity matrix between the rows of ``x`` (B, D) and ``y`` (M, D); larger = farther.

    Args:
        x: (B, D) query embeddings.
        y: (M, D) reference embeddings; ``None`` means ``x`` itself (then M = B and,
            for the Euclidean kinds, the diagonal is exactly 0).
        kind: one of :data:`DISTANCES` (table in the module docstring).

    Returns:
        (B, M) tensor ``D`` in the dtype of ``x``; ``D[i, j]`` compares ``x[i]`` with ``y[j]``.

    Raises:
        ReplearnInputError: unknown ``kind``, inputs that are not 2-D, or differing D.
    """
    check_kind(kind)
    self_distance = y is None
    y = x if y is None else y
    if x.dim() != 2 or y.dim() != 2:
        raise ReplearnInputError(f"pairwise_distance needs 2-D (rows, dim) tensors, got shapes "
                                 f"{tuple(x.shape)} and {tuple(y.shape)}; flatten the embeddings first")
    if x.size(1) != y.size(1):
        raise ReplearnInputError(f"pairwise_distance: dimensions differ ({x.size(1)} vs {y.size(1)}); "
                                 "both sets must come from the same embedding space")
    if kind == "cosine_distance":
        xn = l2_normalize(x)
        yn = xn if self_distance else l2_normalize(y)
        return 1.0 - xn @ yn.T                                                   # (B, M)
    if kind == "inner_product":
        return -(x @ y.T)                                                        # (B, M)

    # ||x_i - y_j||^2 = ||x_i||^2 + ||y_j||^2 - 2 <x_i, y_j>
    x2 = (x * x).sum(dim=1, keepdim=True)                                        # (B, 1)
    y2 = x2.T if self_distance else (y * y).sum(dim=1).unsqueeze(0)             # (1, M)
    d2 = (x2 + y2 - 2.0 * (x @ y.T)).clamp(min=0.0)                              # (B, M)
    if self_distance:
        eye = torch.eye(x.size(0), dtype=torch.bool, device=x.device)
        d2 = d2.masked_fill(eye, 0.0)
    if kind == "squared_euclidean":
        return d2
    positive = d2 != 0                                         # NaN != 0: NaN inputs stay NaN, never become 0
    safe = torch.where(positive, d2, torch.ones_like(d2))      # sqrt'(1) is finite; its gradient is discarded below
    return torch.where(positive, safe.sqrt(), torch.zeros_like(d2))


def mean_pairwise_distance(embeddings: torch.Tensor, kind: DistanceKind = "euclidean") -> torch.Tensor:
    """Collapse diagnostic: mean of ``D[i, j]`` over ordered pairs ``i != j`` of ``embeddings`` (N, D).

    A value near 0 (for ``euclidean`` / ``cosine_distance``) means the encoder maps
    every input to (nearly) the same point: the trivial minimum that contrastive
    losses must avoid. Returns a 0-dim tensor; 0 when N < 2.
    """
    n = embeddings.size(0)
    D = pairwise_distance(embeddings, kind=kind)                                 # (N, N)
    if n < 2:
        return D.sum() * 0.0
    off = ~torch.eye(n, dtype=torch.bool, device=embeddings.device)
    return D[off].mean()
