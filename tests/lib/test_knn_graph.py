"""kNN graph against brute force; NN graph distance against a plain BFS / Dijkstra."""

from __future__ import annotations

import heapq
from collections import deque

import numpy as np
import pytest

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.faiss_index import build_index
from replearn.lib.store.knn_graph import knn_graph, nn_graph_distance, read_knn_graph, write_knn_graph


@pytest.fixture(scope="module")
def xb():
    rng = np.random.default_rng(5)
    return rng.standard_normal((300, 8)).astype(np.float32)


def _brute(xb, k, metric):
    x = xb.astype(np.float64)
    if metric == "cos":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    if metric == "l2":
        s = -((x[:, None] - x[None]) ** 2).sum(-1)
    else:
        s = x @ x.T
    np.fill_diagonal(s, -np.inf)
    I = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return I, np.take_along_axis(s, I, axis=1)


@pytest.mark.parametrize("metric", ["cos", "ip", "l2"])
def test_knn_graph_equals_brute_force(xb, metric):
    src, dst, sim = knn_graph(xb, 5, metric)
    assert src.shape == dst.shape == sim.shape == (1500,)
    assert (src == np.repeat(np.arange(300), 5)).all() and (src != dst).all()
    I, S = _brute(xb, 5, metric)
    assert (dst.reshape(300, 5) == I).mean() > 0.99
    np.testing.assert_allclose(sim.reshape(300, 5), S, rtol=1e-4, atol=1e-4)


def test_knn_graph_with_ids_and_index(xb):
    ids = np.arange(300) * 10 + 1
    index = build_index(xb, "cos", "HNSW16", ids=ids)
    src, dst, sim = knn_graph(xb, 4, "cos", ids=ids, index=index)
    assert set(src) == set(ids) and np.isin(dst, ids).all() and (src != dst).all()
    I, _ = _brute(xb, 4, "cos")
    assert np.mean([len(set(a) & set(ids[b])) / 4 for a, b in zip(dst.reshape(300, 4), I)]) > 0.9


def _bfs(src, dst, a, b):
    adj = {}
    for s, d in zip(src, dst):
        adj.setdefault(int(s), set()).add(int(d))
        adj.setdefault(int(d), set()).add(int(s))
    seen, q = {a: 0}, deque([a])
    while q:
        u = q.popleft()
        for v in adj.get(u, ()):
            if v not in seen:
                seen[v] = seen[u] + 1
                q.append(v)
    return seen.get(b, np.inf)


def _dijkstra(src, dst, w, a, b):
    adj = {}
    for s, d, x in zip(src, dst, w):
        adj.setdefault(int(s), []).append((int(d), x))
        adj.setdefault(int(d), []).append((int(s), x))
    best, h = {a: 0.0}, [(0.0, a)]
    while h:
        du, u = heapq.heappop(h)
        if du > best.get(u, np.inf):
            continue
        for v, x in adj.get(u, ()):
            if du + x < best.get(v, np.inf):
                best[v] = du + x
                heapq.heappush(h, (du + x, v))
    return best.get(b, np.inf)


def test_graph_distance_matches_bfs_and_dijkstra(xb):
    src, dst, sim = knn_graph(xb, 3, "cos")
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 300, 40), rng.integers(0, 300, 40)
    hops = nn_graph_distance((src, dst, sim), a, b)
    assert hops.tolist() == [_bfs(src, dst, int(x), int(y)) for x, y in zip(a, b)]
    assert nn_graph_distance((src, dst), 7, 7) == 0.0
    assert nn_graph_distance((src, dst), int(src[0]), int(dst[0])) == 1.0
    w = nn_graph_distance((src, dst, sim), a, b, weighted=True, metric="cos")
    ref = [_dijkstra(src, dst, 1 - sim.astype(np.float64), int(x), int(y)) for x, y in zip(a, b)]
    np.testing.assert_allclose(w, ref, rtol=1e-6, atol=1e-9)


def test_unreachable_is_inf_and_directed():
    src, dst = np.array([0, 1, 2, 3]), np.array([1, 0, 3, 2])  # two components
    assert nn_graph_distance((src, dst), 0, 3) == np.inf
    src, dst = np.array([0, 1]), np.array([1, 2])
    assert nn_graph_distance((src, dst), 2, 0) == 2.0
    assert nn_graph_distance((src, dst), 2, 0, directed=True) == np.inf


def test_graph_parquet_round_trip_and_plain_readers(tmp_path, xb):
    duckdb = pytest.importorskip("duckdb")
    import polars as pl

    src, dst, sim = knn_graph(xb, 3, "l2")
    p = write_knn_graph(tmp_path / "g" / "knn.parquet", src, dst, sim, metric="l2", k=3, extra={"exact": True})
    s2, d2, w2, meta = read_knn_graph(p)
    assert (s2 == src).all() and (d2 == dst).all() and (w2 == sim).all() and (w2 <= 0).all()
    assert meta == {"k": 3, "metric": "l2", "n_edges": 900, "exact": True}
    assert pl.read_parquet(p).columns == ["src", "dst", "similarity"]
    assert duckdb.sql(f"select count(*) from '{p}' where src = 0").fetchall() == [(3,)]
    assert [q.name for q in p.parent.iterdir()] == ["knn.parquet"]


def test_graph_errors(xb):
    src, dst, sim = knn_graph(xb[:20], 2, "ip")
    with pytest.raises(EmbeddingsError, match="non-negative edge lengths"):
        nn_graph_distance((src, dst, sim), 0, 1, weighted=True, metric="ip")
    with pytest.raises(EmbeddingsError, match=r"ids not in the kNN graph: \[999\]"):
        nn_graph_distance((src, dst), 0, 999)
    with pytest.raises(EmbeddingsError, match="at least 2"):
        knn_graph(xb[:1], 3)
    with pytest.raises(EmbeddingsError, match="NaN"):
        write_knn_graph("/tmp/never.parquet", [0], [1], [np.nan], metric="cos", k=1)
