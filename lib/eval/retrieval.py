"""Retrieval metrics for embeddings with class labels (Musgrave, Belongie & Lim 2020, "A Metric Learning
Reality Check", section 3.2): Precision@1, R-Precision and MAP@R.

Every item is a query against all other items (the query itself excluded). For
a query of class c, R is the number of other items of class c. With the R
nearest neighbours ranked 1..R and rel(i) = 1 if neighbour i has class c:

    P@1         = rel(1)
    R-Precision = (1/R) sum_{i<=R} rel(i)
    MAP@R       = (1/R) sum_{i<=R} P(i) rel(i),   P(i) = (1/i) sum_{j<=i} rel(j)

Queries whose class has no other member (R = 0) are skipped and counted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from replearn.lib.errors import EmbeddingsError
from replearn.lib.topk import exact_topk


@dataclass(frozen=True)
class RetrievalResult:
    """Mean metrics over queries, each in [0, 1]; ``n_queries`` used, ``n_skipped`` with R = 0."""

    precision_at_1: float
    r_precision: float
    map_at_r: float
    n_queries: int
    n_skipped: int

    def to_dict(self, prefix: str = "") -> dict[str, float]:
        """Flat dict for MLflow."""
        return {f"{prefix}{k}": float(v) for k, v in asdict(self).items()}


def _neighbours(x: np.ndarray, k: int, metric: str, batch: int = 1024) -> np.ndarray:
    """Indices (N, k) of each row's k nearest other rows (self excluded), best first, ties by lower row."""
    if metric == "cos":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms > 0, norms, 1.0)
    itself = np.arange(len(x))[:, None]  # never retrieve the query itself
    return exact_topk(x, x, k, "l2" if metric == "l2" else "ip", exclude=itself, batch=batch)[1]


def retrieval_metrics(embeddings: np.ndarray, labels: np.ndarray,
                      metric: Literal["l2", "cos", "ip"] = "l2") -> RetrievalResult:
    """Precision@1, R-Precision and MAP@R of every item against all others.

    Args:
        embeddings: (N, D) finite float array.
        labels: (N,) class labels (any hashable values; compared for equality).
        metric: "l2" (Euclidean), "cos" (cosine) or "ip" (inner product) ranking.

    Returns:
        :class:`RetrievalResult`.

    Raises:
        EmbeddingsError: shape mismatch, non-finite values, or fewer than 2 items.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or len(x) != len(y) or len(x) < 2:
        raise EmbeddingsError(f"retrieval_metrics needs (N, D) embeddings and N labels with N >= 2; "
                              f"got {x.shape} and {y.shape}")
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if len(bad):
        raise EmbeddingsError(f"non-finite embeddings at rows {bad[:5].tolist()} ({len(bad)} rows)")
    _, codes = np.unique(y, return_inverse=True)
    counts = np.bincount(codes)
    R = counts[codes] - 1  # other items of the same class
    k = int(R.max())
    if k == 0:
        return RetrievalResult(0.0, 0.0, 0.0, 0, len(x))
    nn = _neighbours(x, k, metric)
    rel = codes[nn] == codes[:, None]  # (N, k)
    ranks = np.arange(1, k + 1)
    within = ranks[None, :] <= R[:, None]
    rel = rel & within
    use = R > 0
    prec_at_i = np.cumsum(rel, axis=1) / ranks[None, :]
    Rf = np.maximum(R, 1).astype(np.float64)
    map_r = (prec_at_i * rel).sum(1) / Rf
    r_prec = rel.sum(1) / Rf
    p1 = rel[:, 0].astype(np.float64)
    return RetrievalResult(float(p1[use].mean()), float(r_prec[use].mean()), float(map_r[use].mean()),
                           int(use.sum()), int((~use).sum()))
