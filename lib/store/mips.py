"""Maximum inner product search (MIPS) over unnormalised vectors, served by any L2 index (HNSW, IVF).

Which words appear near ``x``? Query ``v(x)`` against all context vectors
``u(y)`` by inner product, where the ``u(y)`` are not normalised. Inner
product is not a metric, so graph (HNSW) and partition (IVF) indexes built
for L2 do not apply directly. The reduction of Bachrach et al. 2014
("Speeding up the Xbox recommender system using a Euclidean transformation
for inner-product spaces", RecSys) adds one coordinate:

* database ``x -> x' = [x, sqrt(M^2 - ||x||^2)]`` with ``M = max ||x||``,
  so every ``||x'|| = M``;
* query ``q -> q' = [q, 0]``.

Then ``||q' - x'||^2 = ||q||^2 + M^2 - 2 <q, x>``: for a fixed query the
Euclidean order over ``x'`` is exactly the reverse inner-product order over
``x``, so the L2 nearest neighbours of ``q'`` are the maximum-inner-product
neighbours of ``q``, and :func:`search_mips` converts the distances back to
inner products ``<q, x> = (||q||^2 + M^2 - d2) / 2``.

Precision: FAISS computes ``d2`` in float32, so recovered inner products
carry an absolute error of about ``1e-7 * (||q||^2 + M^2)``; neighbours whose
inner products differ by less than that may swap places (exact ties aside,
results equal exact MIPS; see tests/lib/test_mips.py).
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.faiss_index import _as_matrix, _check_k, _rows, build_index, search

__all__ = [
    "build_mips_index",
    "exact_mips",
    "mips_augment_database",
    "mips_augment_queries",
    "search_mips",
]


def mips_augment_database(xb: np.ndarray, max_norm: float | None = None) -> tuple[np.ndarray, float]:
    """Append ``sqrt(M^2 - ||x||^2)`` to every database vector (Bachrach et al. 2014).

    Args:
        xb: ``(N, D)`` finite vectors (cast to float32; never modified).
        max_norm: ``M``; default ``max ||x||`` over ``xb``. A given ``M`` must
            be >= every norm (e.g. to add vectors later under the same ``M``).

    Returns:
        ``(xb_aug, M)``: ``(N, D + 1)`` float32 C-contiguous, each row of norm
        ``M``; and ``M`` as a float.

    Raises:
        EmbeddingsError: non-finite or non-2-D ``xb``; all-zero ``xb`` (M = 0:
            every inner product is 0); ``max_norm`` below some row's norm
            (the rows are named).
    """
    xb = _as_matrix(xb, "xb")
    sq = np.einsum("ij,ij->i", xb, xb, dtype=np.float64)
    m2 = float(sq.max()) if len(sq) else 0.0
    if max_norm is not None:
        over = np.flatnonzero(sq > float(max_norm) ** 2 * (1 + 1e-6))
        if len(over):
            raise EmbeddingsError(
                f"max_norm={max_norm} is below the norm of {_rows(over, name='positions')}: "
                "use max_norm >= the largest norm (or leave it None)"
            )
        m2 = float(max_norm) ** 2
    if m2 == 0.0:
        raise EmbeddingsError("every vector in xb is zero: all inner products are 0, MIPS is undefined")
    extra = np.sqrt(np.maximum(m2 - sq, 0.0)).astype(np.float32)
    return np.ascontiguousarray(np.hstack([xb, extra[:, None]])), float(np.sqrt(m2))


def mips_augment_queries(xq: np.ndarray) -> np.ndarray:
    """Append a 0 coordinate to every query: ``(nq, D) -> (nq, D + 1)`` float32. Raises EmbeddingsError on bad input."""
    xq = _as_matrix(xq, "xq")
    return np.ascontiguousarray(np.hstack([xq, np.zeros((len(xq), 1), np.float32)]))


def build_mips_index(
    xb: np.ndarray,
    factory: str = "Flat",
    ids: np.ndarray | None = None,
    *,
    train_size: int | None = None,
    seed: int = 0,
) -> tuple[faiss.Index, float]:
    """An L2 FAISS index over the augmented ``xb`` that answers MIPS through :func:`search_mips`.

    Args:
        xb: ``(N, D)`` finite, unnormalised vectors (e.g. word2vec context vectors U).
        factory: any ``faiss.index_factory`` string for dimension ``D + 1``
            (``"Flat"``, ``"HNSW32"``, ``"IVF1024,Flat"``, or
            ``choose_index(N, D, "mips").factory``).
        ids: optional ``(N,)`` distinct ids >= 0.
        train_size, seed: as :func:`~replearn.lib.store.faiss_index.build_index`.

    Returns:
        ``(index, M)``: the index (``metric="l2"``, ``d == D + 1``) and the
        max norm ``M`` that :func:`search_mips` needs (store it in the
        sidecar: ``save_index(..., metric="l2", extra={"mips_max_norm": M})``).
        Tune it with ``tune_index(index, xb_aug, metric="l2")`` where
        ``xb_aug = mips_augment_database(xb, M)[0]``: L2 recall on the
        augmented vectors is MIPS recall.

    Raises:
        EmbeddingsError: as :func:`mips_augment_database` and ``build_index``.
    """
    xb_aug, m = mips_augment_database(xb)
    return build_index(xb_aug, "l2", factory, ids=ids, train_size=train_size, seed=seed), m


def search_mips(index: faiss.Index, xq: np.ndarray, k: int, max_norm: float) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` database vectors of largest inner product with each query; never returns -1.

    Args:
        index: from :func:`build_mips_index` (L2 over ``D + 1`` dimensions).
        xq: ``(nq, D)`` finite queries (not augmented).
        k: neighbours wanted, >= 1; truncated to ``index.ntotal``.
        max_norm: ``M`` returned by :func:`build_mips_index`.

    Returns:
        ``(D, I)`` of shape ``(nq, min(k, ntotal))``: ``D`` float32 inner
        products, descending; ``I`` int64 ids.

    Raises:
        EmbeddingsError: ``xq`` dimension is not ``index.d - 1``, non-finite
            queries, a non-L2 index, ``k < 1``, or an approximate index that
            came back short (raise nprobe / efSearch).
    """
    k = _check_k(k)
    xq = _as_matrix(xq, "xq")
    if xq.shape[1] != index.d - 1:
        raise EmbeddingsError(
            f"xq has dimension {xq.shape[1]} but this MIPS index holds {index.d - 1}-dimensional vectors "
            f"(plus the extra coordinate): pass un-augmented queries of dimension {index.d - 1}"
        )
    D2, I = search(index, mips_augment_queries(xq), k, "l2")
    qn = np.einsum("ij,ij->i", xq, xq, dtype=np.float64)
    ip = (qn[:, None] + float(max_norm) ** 2 - D2.astype(np.float64)) / 2
    return ip.astype(np.float32), I


def exact_mips(xb: np.ndarray, xq: np.ndarray, k: int, ids: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force MIPS: :func:`~replearn.lib.store.faiss_index.exact_search` with ``metric="ip"``."""
    from replearn.lib.store.faiss_index import exact_search

    return exact_search(xb, xq, k, "ip", ids=ids)
