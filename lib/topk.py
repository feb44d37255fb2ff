"""Exact (brute-force) top-k search with numpy: the one place replearn ranks a database by hand.

Every exact nearest-neighbour question in lib/ comes here: gensim-style
``most_similar`` (lib/vectors.py), sense neighbours (lib/multisense/model.py),
3CosAdd analogies (lib/eval/analogy.py), the retrieval metrics
(lib/eval/retrieval.py), the kNN graph (lib/store/knn_graph.py) and the ground
truth that approximate FAISS indexes are measured and tuned against
(lib/store/faiss_index.py ``exact_search``, lib/store/index_tuning.py).

Scores, for a query ``q`` and a database row ``x``:

* ``metric="ip"``: the inner product ``<q, x>``; larger is better (cosine when
  both sides are unit rows);
* ``metric="l2"``: the squared Euclidean distance
  ``||q||^2 - 2 <q, x> + ||x||^2`` (one matrix product; the Euclidean
  distance-matrix expansion), clamped at 0 against round-off; smaller is better.

Ties are broken by the lower database row, so for given scores the result is
deterministic, whatever the selection path. (BLAS may round a product
differently for another block shape, so ``batch`` can matter at the last
float32 bit.)
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from replearn.lib.errors import ReplearnInputError

__all__ = ["TopkMetric", "exact_topk"]

TopkMetric = Literal["ip", "l2"]

_BLOCK_ELEMENTS = 1 << 24
"""Scores held per block by default (64 MiB in float32): ``batch = max(1, 2**24 // N)`` queries."""


def exact_topk(
    xq: np.ndarray,
    xb: np.ndarray,
    k: int,
    metric: TopkMetric = "ip",
    *,
    exclude: np.ndarray | None = None,
    batch: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best database rows for each query, by brute force, best first.

    Args:
        xq: ``(Q, D)`` real queries (not modified). The scores are computed in
            ``np.result_type(xq, xb)`` (float32 for float32 inputs).
        xb: ``(N, D)`` real database rows (not modified).
        k: results wanted per query, >= 1; truncated to N.
        metric: ``"ip"`` (inner product, descending) or ``"l2"`` (squared
            Euclidean distance, ascending); see the module docstring.
        exclude: optional ``(Q, E)`` integer rows of ``xb`` that query ``i`` must
            never return (its own row, the words of its question, ...); entries
            outside ``[0, N)`` (e.g. ``-1`` padding) are ignored.
        batch: queries per block (one ``(batch, N)`` score matrix at a time,
            plus the int64 indices of its partial sort); default
            ``max(1, 2**24 // N)``: 64 MiB of float32 scores and 128 MiB of indices.

    Returns:
        ``(D, I)``, both ``(Q, min(k, N))``: ``D`` the scores (``"ip"``) or
        squared distances (``"l2"``), ``I`` the int64 rows of ``xb``; ordered
        best first, ties by lower row. When exclusion leaves a query fewer than
        ``min(k, N)`` rows, its trailing slots hold ``I = -1`` and
        ``D = -inf`` (``"ip"``) or ``+inf`` (``"l2"``).

    Raises:
        ReplearnInputError: ``xq`` / ``xb`` not 2-D or of different widths,
            ``k < 1``, an unknown ``metric``, ``exclude`` not ``(Q, E)``, or
            ``batch < 1``.
    """
    xq, xb = np.asarray(xq), np.asarray(xb)
    excl = _check_args(xq, xb, k, metric, exclude, batch)
    n = len(xb)
    k_eff = min(int(k), n)
    dtype = np.result_type(xq, xb)
    D = np.empty((len(xq), k_eff), dtype)
    I = np.empty((len(xq), k_eff), np.int64)
    if k_eff == 0 or len(xq) == 0:
        return D, I
    step = int(batch) if batch is not None else max(1, _BLOCK_ELEMENTS // n)
    xb_sq = np.einsum("ij,ij->i", xb, xb) if metric == "l2" else None
    for s in range(0, len(xq), step):
        q = xq[s : s + step]
        key = _block_keys(q, xb, xb_sq)
        if excl is not None:
            _mask_excluded(key, excl[s : s + step])
        top = _best_rows(key, k_eff)
        d = np.take_along_axis(key, top, axis=1)
        D[s : s + step] = d if metric == "l2" else -d  # excluded rows: +inf (l2) / -inf (ip)
        I[s : s + step] = top
        if excl is not None:
            I[s : s + step][(top[:, :, None] == excl[s : s + step, None, :]).any(axis=2)] = -1
    return D, I


def _block_keys(q: np.ndarray, xb: np.ndarray, xb_sq: np.ndarray | None) -> np.ndarray:
    """``(b, N)`` ranking keys, smaller = better, in one buffer: squared L2 distances
    ``||q||^2 - 2 <q, x> + ||x||^2`` clamped at 0 when ``xb_sq`` (``||x||^2``, (N,)) is given, else ``-<q, x>``.

    Computed in place on the product (``-2 S + a + b`` is bitwise ``a - 2 S + b`` in IEEE arithmetic).
    """
    key = q @ xb.T  # (b, N) inner products
    if xb_sq is None:
        return np.negative(key, out=key)
    key *= -2
    key += np.einsum("ij,ij->i", q, q)[:, None]
    key += xb_sq[None, :]
    return np.maximum(key, 0, out=key)


def _check_args(xq, xb, k, metric, exclude, batch) -> np.ndarray | None:
    """Validate :func:`exact_topk`'s arguments; return ``exclude`` as an int64 ``(Q, E)`` array or None."""
    if xq.ndim != 2 or xb.ndim != 2 or xq.shape[1] != xb.shape[1]:
        raise ReplearnInputError(
            f"exact_topk needs (Q, D) queries and (N, D) database rows of one width D; got {xq.shape} and {xb.shape}"
        )
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ReplearnInputError(f"k must be an int >= 1, got {k!r}")
    if metric not in ("ip", "l2"):
        raise ReplearnInputError(f"metric must be 'ip' or 'l2', got {metric!r}")
    if batch is not None and (isinstance(batch, bool) or int(batch) < 1):
        raise ReplearnInputError(f"batch must be an int >= 1, got {batch!r}")
    if exclude is None:
        return None
    excl = np.asarray(exclude, dtype=np.int64)
    if excl.ndim != 2 or len(excl) != len(xq):
        raise ReplearnInputError(f"exclude must be (Q, E) = ({len(xq)}, E) rows per query, got shape {excl.shape}")
    return np.where((excl >= 0) & (excl < len(xb)), excl, -1)  # -1: nothing to exclude


def _mask_excluded(key: np.ndarray, excl: np.ndarray) -> None:
    """Set ``key[i, excl[i, j]] = +inf`` (worst) for the entries ``>= 0`` of ``excl`` (b, E)."""
    r, c = np.nonzero(excl >= 0)
    key[r, excl[r, c]] = np.inf


def _best_rows(key: np.ndarray, k: int) -> np.ndarray:
    """``(b, k)`` column indices of the ``k`` smallest entries of each row of ``key`` (b, N),
    ascending, ties by lower column.

    A full sort (or ``argpartition``) of every row costs far more than the
    matrix product for small ``k``; instead: the minima of ``4 k`` column groups
    (one pass); their ``k``-th smallest ``t`` bounds the row's ``k``-th smallest
    key from above (``k`` distinct entries are ``<= t``); only the entries
    ``<= t`` -- about ``1.15 k`` per row on continuous data -- are sorted by
    ``(key, column)``. Rows with fewer than ``k`` such entries (NaN keys) are
    sorted whole. Exactly tied keys make more candidates, never other results.
    """
    b, n = key.shape
    if k >= n:
        return np.argsort(key, axis=1, kind="stable")
    g = min(n, 4 * k)
    group_min = np.minimum.reduceat(key, (np.arange(g) * n) // g, axis=1)  # (b, g)
    bound = np.partition(group_min, k - 1, axis=1)[:, k - 1 : k]  # (b, 1)
    flat = np.flatnonzero(key <= bound)  # candidates, row-major: by row, then column
    r, c = np.divmod(flat, n)
    counts = np.bincount(r, minlength=b)
    pos = np.arange(len(r)) - (np.cumsum(counts) - counts)[r]  # position within its row
    # candidates of each row packed left in a (b, most) matrix, padded after them with +inf;
    # a stable sort then orders them by key, ties by column (padding last)
    most = int(counts.max(initial=0))
    vals = np.full((b, most), np.inf, key.dtype)
    vals[r, pos] = key.reshape(-1)[flat]
    cols = np.zeros((b, most), np.int64)
    cols[r, pos] = c
    full = counts >= k
    out = np.empty((b, k), np.int64)
    if full.any():
        out[full] = np.take_along_axis(cols[full], np.argsort(vals[full], axis=1, kind="stable")[:, :k], axis=1)
    if not full.all():
        out[~full] = np.argsort(key[~full], axis=1, kind="stable")[:, :k]
    return out
