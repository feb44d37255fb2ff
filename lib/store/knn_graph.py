"""The k-nearest-neighbour graph of a set of embeddings, as Parquet, and "NN graph distance" over it.

:func:`knn_graph` links every item to its ``k`` nearest other items:
``(src, dst, similarity)`` arrays of length ``N * k`` (sorted by ``src``, then
best neighbour first). :func:`write_knn_graph` stores them as a Parquet table
with those three columns (readable by pyarrow, polars, duckdb);
:func:`nn_graph_distance` answers how many hops separate two items over the
graph -- the "NN graph distance" -- with :mod:`scipy.sparse.csgraph`.

Conventions:

* ``similarity``: ``metric="cos"`` the cosine in [-1, 1]; ``"ip"`` the inner
  product; ``"l2"`` the *negated* squared Euclidean distance (<= 0), so that
  higher is always closer.
* The graph is read as **undirected** by default (``a -> b`` in the kNN
  lists makes ``a`` and ``b`` adjacent both ways), the usual choice for graph
  distances on kNN graphs: the directed kNN relation is not symmetric and
  leaves many pairs unreachable one way. ``directed=True`` follows the
  edges as stored.
* ``weighted=False`` (default): the distance is the hop count (BFS).
  ``weighted=True``: the sum of edge lengths along the shortest path
  (Dijkstra), lengths ``1 - cos`` for cos (in [0, 2]) and ``sqrt(d2)`` for
  l2; inner product has no non-negative length, so ``weighted`` is refused
  for ``ip``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.atomic import atomic_path
from replearn.lib.store.faiss_index import _as_matrix, _check_k, _faiss_metric, _normalized, search
from replearn.lib.store.embeddings_columns import _as_ids, _rows
from replearn.lib.topk import exact_topk

__all__ = [
    "GRAPH_METADATA_KEY",
    "knn_graph",
    "nn_graph_distance",
    "read_knn_graph",
    "write_knn_graph",
]

GRAPH_METADATA_KEY = b"replearn_knn_graph"
"""Parquet footer key of the graph's JSON metadata (``k``, ``metric``, ``n``, ``exact``)."""


def knn_graph(
    xb: np.ndarray,
    k: int,
    metric: str = "cos",
    *,
    ids: np.ndarray | None = None,
    index: faiss.Index | None = None,
    batch: int = 4096,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each item's ``k`` nearest other items: ``(src, dst, similarity)``.

    Args:
        xb: ``(N, D)`` finite vectors, N >= 2.
        k: neighbours per item, 1 <= k; truncated to ``N - 1``.
        metric: ``"cos"``, ``"ip"`` or ``"l2"`` (see the module docstring for ``similarity``).
        ids: optional ``(N,)`` distinct ids >= 0; ``src`` / ``dst`` hold them.
            Default: row positions.
        index: optional FAISS index over ``xb`` built with the same ``metric``
            and ``ids`` (e.g. the tuned HNSW/IVF index): the graph is then
            approximate but fast for large N. Default: exact search by
            :func:`replearn.lib.topk.exact_topk` (O(N^2 D), fine up to ~10^5
            items; ties by lower row).
        batch: queries per search call of ``index`` (the exact search sizes its own blocks).

    Returns:
        ``src`` int64 ``(N * k,)`` (each id ``k`` times, in ``xb`` order),
        ``dst`` int64 ``(N * k,)`` (its neighbours, best first, never itself),
        ``similarity`` float32 ``(N * k,)``.

    Raises:
        EmbeddingsError: N < 2, bad ``k`` / ``metric`` / ``ids``, non-finite
            or (cos) zero vectors, an index whose ``ntotal`` is not N.
    """
    _faiss_metric(metric)
    k = _check_k(k)
    xb = _as_matrix(xb, "xb")
    n = len(xb)
    if n < 2:
        raise EmbeddingsError(f"a kNN graph needs at least 2 vectors, got {n}")
    k = min(k, n - 1)
    ids_np = _as_ids(ids, n)
    if index is None:
        dst, sim = _exact_neighbours(xb, k, metric)
        dst = ids_np[dst]
    else:
        if index.ntotal != n:
            raise EmbeddingsError(f"index holds {index.ntotal} vectors but xb has {n}: pass the index built over xb")
        dst, sim = _index_neighbours(index, xb, k, metric, ids_np, batch)
    return np.repeat(ids_np, k), dst.ravel(), sim.ravel()


def _exact_neighbours(xb: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``(dst (N, k) row positions, similarity (N, k) float32)``, each row itself excluded
    (blocks of queries sized by :func:`~replearn.lib.topk.exact_topk`, ~64 MiB of scores)."""
    xs = _normalized(xb, "xb") if metric == "cos" else xb
    itself = np.arange(len(xs))[:, None]
    D, I = exact_topk(xs, xs, k, "l2" if metric == "l2" else "ip", exclude=itself)
    return I, (-D if metric == "l2" else D)


def _index_neighbours(index: faiss.Index, xb: np.ndarray, k: int, metric: str, ids_np: np.ndarray,
                      batch: int) -> tuple[np.ndarray, np.ndarray]:
    """``(dst (N, k) ids, similarity (N, k) float32)`` from a FAISS index over ``xb`` that returns ``ids_np``."""
    n = len(xb)
    dst = np.empty((n, k), np.int64)
    sim = np.empty((n, k), np.float32)
    for s in range(0, n, batch):
        q = xb[s : s + batch]
        D, I = search(index, q, k + 1, metric)  # validated, no -1
        own = ids_np[s : s + batch]
        keep = I != own[:, None]
        # drop the item itself (normally first); if it is absent (ties, approximate index) drop the last
        keep[keep.all(axis=1), -1] = False
        short = np.flatnonzero(keep.sum(axis=1) != k)
        if len(short):  # duplicates of the item listed several times: keep the first k others
            for r in short:
                cols = np.flatnonzero(keep[r])
                keep[r] = False
                keep[r, cols[:k]] = True
        dst[s : s + len(q)] = I[keep].reshape(-1, k)
        rows_D = D[keep].reshape(-1, k)
        sim[s : s + len(q)] = -rows_D if metric == "l2" else rows_D
    return dst, sim


def write_knn_graph(
    path: Path | str,
    src: np.ndarray,
    dst: np.ndarray,
    similarity: np.ndarray,
    *,
    metric: str,
    k: int,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the graph as Parquet ``(src int64, dst int64, similarity float32)`` atomically; return the path.

    Footer metadata under ``replearn_knn_graph``: ``{"k", "metric", "n_edges"}``
    plus ``extra`` (e.g. ``{"exact": True, "embeddings": "input.parquet"}``). Plain readers: ``pl.read_parquet(path)``,
    ``duckdb.sql(f"select * from '{path}'")``.

    Raises:
        EmbeddingsError: arrays of different lengths, or non-finite similarities (rows named).
    """
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    similarity = np.asarray(similarity, np.float32)
    if not (src.shape == dst.shape == similarity.shape) or src.ndim != 1:
        raise EmbeddingsError(
            f"src, dst, similarity must be 1-D of one length, got {src.shape}, {dst.shape}, {similarity.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(similarity))
    if len(bad):
        raise EmbeddingsError(f"similarity has NaN/Inf in {_rows(bad, 'edges', 'positions')}")
    meta = {"k": int(k), "metric": metric, "n_edges": int(len(src)), **(extra or {})}
    table = pa.table({"src": src, "dst": dst, "similarity": similarity})
    table = table.replace_schema_metadata({GRAPH_METADATA_KEY: json.dumps(meta).encode()})
    path = Path(path)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def read_knn_graph(path: Path | str) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Read :func:`write_knn_graph` output: ``(src, dst, similarity, metadata)``. Raises FileNotFoundError."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"kNN graph file {path} does not exist (write it with write_knn_graph)")
    t = pq.read_table(path)
    meta = json.loads((t.schema.metadata or {}).get(GRAPH_METADATA_KEY, b"{}"))
    return (t.column("src").to_numpy().astype(np.int64), t.column("dst").to_numpy().astype(np.int64),
            t.column("similarity").to_numpy().astype(np.float32), meta)


def _graph_matrix(src, dst, similarity, metric, weighted, directed):
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    nodes, inv = np.unique(np.concatenate([src, dst]), return_inverse=True)
    s, d = inv[: len(src)], inv[len(src) :]
    if weighted:
        if similarity is None:
            raise EmbeddingsError("weighted=True needs the similarity array")
        sim = np.asarray(similarity, np.float64)
        if metric == "cos":
            w = np.maximum(1.0 - sim, 0.0)
        elif metric == "l2":
            w = np.sqrt(np.maximum(-sim, 0.0))
        else:
            raise EmbeddingsError(
                f"weighted graph distance needs non-negative edge lengths: metric={metric!r} has none "
                "(use metric 'cos' or 'l2', or weighted=False for hop counts)"
            )
        w = np.maximum(w, 1e-12)  # csgraph drops explicit zeros: keep a tiny length for identical items
    else:
        w = np.ones(len(s))
    g = csr_matrix((w, (s, d)), shape=(len(nodes), len(nodes)))
    if not directed:
        g = g.maximum(g.T)
    return nodes, g


def nn_graph_distance(
    graph: tuple[np.ndarray, np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray],
    a: int | np.ndarray,
    b: int | np.ndarray,
    *,
    metric: str = "cos",
    weighted: bool = False,
    directed: bool = False,
) -> float | np.ndarray:
    """Shortest-path distance between items ``a`` and ``b`` over a kNN graph.

    Args:
        graph: ``(src, dst)`` or ``(src, dst, similarity)`` from
            :func:`knn_graph` / :func:`read_knn_graph` (ids, not positions).
        a, b: item ids, scalars or equal-length 1-D arrays (pairs ``a[i], b[i]``).
        metric: the graph's metric (only used when ``weighted``).
        weighted: ``False``: hop count (BFS, an integer-valued float);
            ``True``: sum of edge lengths (Dijkstra; see the module docstring).
        directed: follow edges only from ``src`` to ``dst`` (default: undirected).

    Returns:
        A float for scalar ``a, b``, else a float64 array: 0 for ``a == b``,
        ``inf`` when ``b`` cannot be reached from ``a``.

    Raises:
        EmbeddingsError: an id that is not in the graph (the ids are named),
            ``a``/``b`` of different lengths, ``weighted`` with ``ip``.
    """
    src, dst = graph[0], graph[1]
    similarity = graph[2] if len(graph) > 2 else None
    nodes, g = _graph_matrix(src, dst, similarity, metric, weighted, directed)
    scalar = np.ndim(a) == 0 and np.ndim(b) == 0
    a_arr, b_arr = np.atleast_1d(np.asarray(a, np.int64)), np.atleast_1d(np.asarray(b, np.int64))
    if a_arr.shape != b_arr.shape:
        raise EmbeddingsError(f"a and b must have the same length, got {a_arr.shape} and {b_arr.shape}")
    pos_a, pos_b = np.searchsorted(nodes, a_arr), np.searchsorted(nodes, b_arr)
    missing = [int(x) for x, p in list(zip(a_arr, pos_a)) + list(zip(b_arr, pos_b))
               if p >= len(nodes) or nodes[min(p, len(nodes) - 1)] != x]
    if missing:
        raise EmbeddingsError(f"ids not in the kNN graph: {sorted(set(missing))[:5]}; use ids from its src column")
    sources, inv = np.unique(pos_a, return_inverse=True)
    dist = shortest_path(g, method="D", directed=True, unweighted=not weighted, indices=sources)
    out = dist[inv, pos_b]
    return float(out[0]) if scalar else out
