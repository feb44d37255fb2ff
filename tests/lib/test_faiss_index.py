"""FAISS indexes checked against numpy brute force, faiss-contrib style."""

from __future__ import annotations

import json
import subprocess
import sys

import faiss
import numpy as np
import pytest

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.faiss_index import (
    build_index,
    exact_search,
    load_index,
    recall_at_k,
    save_index,
    search,
    sidecar_path,
    timed_build_index,
)

N, NQ, D = 500, 40, 16
METRICS = ["ip", "l2", "cos"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((N, D)).astype(np.float32)
    xq = rng.standard_normal((NQ, D)).astype(np.float32)  # held out: not in xb
    return xb, xq


def _loop_search(xb, xq, k, metric):
    """The plainest possible ground truth: one query at a time, float64."""
    xb, xq = xb.astype(np.float64), xq.astype(np.float64)
    if metric == "cos":
        xb = xb / np.linalg.norm(xb, axis=1, keepdims=True)
        xq = xq / np.linalg.norm(xq, axis=1, keepdims=True)
    Ds, Is = [], []
    for q in xq:
        if metric == "l2":
            s = ((xb - q) ** 2).sum(axis=1)
            order = np.argsort(s, kind="stable")[:k]
        else:
            s = xb @ q
            order = np.argsort(-s, kind="stable")[:k]
        Ds.append(s[order])
        Is.append(order)
    return np.array(Ds), np.array(Is)


def _assert_same_neighbours(D1, I1, D2, I2, rtol=1e-4, atol=1e-4):
    assert D1.shape == D2.shape == I1.shape == I2.shape
    np.testing.assert_allclose(D1, D2, rtol=rtol, atol=atol)
    diff = I1 != I2
    # ids may differ only where two neighbours are (numerically) tied
    np.testing.assert_allclose(D1[diff], D2[diff], rtol=rtol, atol=atol)
    assert diff.mean() < 0.01


@pytest.mark.parametrize("metric", METRICS)
def test_exact_search_matches_loop(data, metric):
    xb, xq = data
    D, I = exact_search(xb, xq, 10, metric)
    Dl, Il = _loop_search(xb, xq, 10, metric)
    assert D.dtype == np.float32 and I.dtype == np.int64
    _assert_same_neighbours(D, I, Dl, Il)


@pytest.mark.parametrize("metric", METRICS)
def test_flat_search_equals_brute_force(data, metric):
    xb, xq = data
    index = build_index(xb, metric)
    assert index.ntotal == N and index.d == D
    D_, I_ = search(index, xq, 10, metric)
    De, Ie = exact_search(xb, xq, 10, metric)
    _assert_same_neighbours(D_, I_, De, Ie)
    if metric == "l2":
        assert (np.diff(D_, axis=1) >= 0).all()
    else:
        assert (np.diff(D_, axis=1) <= 0).all()
    if metric == "cos":
        assert (np.abs(D_) <= 1 + 1e-5).all()


@pytest.mark.parametrize("metric", METRICS)
def test_flat_recall_is_one(data, metric):
    xb, xq = data
    assert recall_at_k(build_index(xb, metric), xb, xq, k=10, metric=metric) == 1.0


def test_cos_does_not_modify_inputs(data):
    xb, xq = data
    xb0, xq0 = xb.copy(), xq.copy()
    search(build_index(xb, "cos"), xq, 5, "cos")
    exact_search(xb, xq, 5, "cos")
    assert np.array_equal(xb, xb0) and np.array_equal(xq, xq0)


def test_ids_are_returned(data):
    xb, xq = data
    ids = np.arange(N, dtype=np.int64) * 7 + 1000
    index = build_index(xb, "l2", ids=ids)
    assert isinstance(index, faiss.IndexIDMap2)
    _, I = search(index, xq, 5, "l2")
    _, Ie = exact_search(xb, xq, 5, "l2", ids=ids)
    assert np.isin(I, ids).all()
    assert (I == Ie).mean() > 0.99
    assert recall_at_k(index, xb, xq, 10, metric="l2") == 1.0  # ids taken from the IDMap
    # a factory that already has an IDMap
    index2 = build_index(xb, "ip", "IDMap,Flat", ids=ids)
    assert (search(index2, xq, 3, "ip")[1] == exact_search(xb, xq, 3, "ip", ids=ids)[1]).mean() > 0.99


def test_k_larger_than_ntotal_never_returns_minus_one():
    rng = np.random.default_rng(1)
    xb = rng.standard_normal((5, 4)).astype(np.float32)
    xq = rng.standard_normal((3, 4)).astype(np.float32)
    for metric in METRICS:
        index = build_index(xb, metric)
        D_, I_ = search(index, xq, 50, metric)
        assert I_.shape == D_.shape == (3, 5)  # truncated to ntotal
        assert (I_ >= 0).all() and np.isfinite(D_).all()
        assert (np.sort(I_, axis=1) == np.arange(5)).all()  # every vector, once
        De, Ie = exact_search(xb, xq, 50, metric)
        assert Ie.shape == (3, 5)
        assert recall_at_k(index, xb, xq, k=50, metric=metric) == 1.0


def test_approximate_index_short_results_raise_not_pad(data):
    xb, xq = data
    index = build_index(xb, "l2", "IVF16,Flat")
    faiss.extract_index_ivf(index).nprobe = 1
    # an inverted list holds ~N/16 ≈ 31 vectors: k=400 cannot be filled from one list
    with pytest.raises(EmbeddingsError, match="nprobe"):
        search(index, xq, 400, "l2")
    r = recall_at_k(index, xb, xq, 10, metric="l2")
    assert 0 < r < 1
    faiss.extract_index_ivf(index).nprobe = 16  # all lists: exact
    assert recall_at_k(index, xb, xq, 10, metric="l2") == 1.0


def test_hnsw_builds_and_recalls(data):
    xb, xq = data
    index = build_index(xb, "cos", "HNSW16")
    assert recall_at_k(index, xb, xq, 10, metric="cos") > 0.8


def test_inputs_are_cast(data):
    xb, xq = data
    index = build_index(np.asfortranarray(xb.astype(np.float64)), "ip")
    D1, I1 = search(index, xq.astype(np.float64)[:, :], 5, "ip")
    D2, I2 = search(index, np.asfortranarray(xq), 5, "ip")
    assert np.array_equal(I1, I2)


# --------------------------------------------------------------------------- errors


def test_query_errors(data):
    xb, xq = data
    index = build_index(xb, "l2")
    with pytest.raises(EmbeddingsError, match="dimension 8 but the index has dimension 16"):
        search(index, xq[:, :8], 5, "l2")
    bad = xq.copy()
    bad[[3, 9], 0] = np.nan
    with pytest.raises(EmbeddingsError, match=r"NaN or Inf .* 2 rows \(positions 3, 9\)"):
        search(index, bad, 5, "l2")
    with pytest.raises(EmbeddingsError, match="2-D"):
        search(index, xq[0], 5, "l2")
    with pytest.raises(EmbeddingsError, match="k must be"):
        search(index, xq, 0, "l2")
    with pytest.raises(EmbeddingsError, match="built for l2"):
        search(index, xq, 5, "ip")
    with pytest.raises(EmbeddingsError, match="metric must be"):
        search(index, xq, 5, "dot")
    zero = xq.copy()
    zero[2] = 0
    with pytest.raises(EmbeddingsError, match="zero vectors"):
        search(build_index(xb, "cos"), zero, 5, "cos")


def test_build_errors(data):
    xb, _ = data
    bad = xb.copy()
    bad[7, 3] = np.inf
    with pytest.raises(EmbeddingsError, match="positions 7"):
        build_index(bad, "ip")
    with pytest.raises(EmbeddingsError, match="duplicate"):
        build_index(xb[:3], "ip", ids=[1, 1, 2])
    with pytest.raises(EmbeddingsError, match=">= 0"):
        build_index(xb[:3], "ip", ids=[-1, 0, 2])
    with pytest.raises(EmbeddingsError, match="empty"):
        build_index(xb[:0], "ip")
    with pytest.raises(ValueError, match="factory"):
        build_index(xb, "ip", "NotAnIndex")
    with pytest.raises(EmbeddingsError, match="cannot train"):
        build_index(xb[:10], "l2", "IVF64,Flat")


# --------------------------------------------------------------------------- save / load


def test_save_load_round_trip(tmp_path, data):
    xb, xq = data
    ids = np.arange(N) + 5
    index, secs = timed_build_index(xb, "cos", "Flat", ids=ids)
    r = recall_at_k(index, xb, xq, 10, metric="cos")
    p = save_index(
        index, tmp_path / "idx" / "emb.faiss", metric="cos", factory="Flat", recall_at_10=r,
        build_seconds=secs, extra={"embeddings": "emb.parquet"},
    )
    assert sorted(f.name for f in p.parent.iterdir()) == ["emb.faiss", "emb.json"]
    side = json.loads(sidecar_path(p).read_text())
    assert side["metric"] == "cos" and side["factory"] == "Flat"
    assert side["ntotal"] == N and side["dim"] == D and side["recall_at_10"] == 1.0
    assert side["build_seconds"] >= 0 and side["embeddings"] == "emb.parquet"

    index2, meta = load_index(p)
    assert meta == side
    D1, I1 = search(index, xq, 10, "cos")
    D2, I2 = search(index2, xq, 10, "cos")
    assert np.array_equal(I1, I2) and np.array_equal(D1, D2)
    assert recall_at_k(index2, xb, xq, 10, metric="cos") == 1.0


def test_save_and_load_errors(tmp_path, data):
    xb, _ = data
    index = build_index(xb, "l2")
    with pytest.raises(EmbeddingsError):
        save_index(index, tmp_path / "a.faiss", metric="ip")
    with pytest.raises(ValueError, match="sidecar"):
        save_index(index, tmp_path / "a.json", metric="l2")
    with pytest.raises(ValueError, match="override"):
        save_index(index, tmp_path / "a.faiss", metric="l2", extra={"ntotal": 3})
    assert list(tmp_path.iterdir()) == []
    p = save_index(index, tmp_path / "a.faiss", metric="l2")
    side = json.loads(sidecar_path(p).read_text())
    sidecar_path(p).write_text(json.dumps({**side, "ntotal": 1}))
    with pytest.raises(EmbeddingsError, match="disagree"):
        load_index(p)
    sidecar_path(p).unlink()
    with pytest.raises(FileNotFoundError):
        load_index(p)


def test_lib_store_never_imports_prefect_or_mlflow():
    code = (
        "import sys, replearn.lib.store.atomic, replearn.lib.store.embeddings_table, "
        "replearn.lib.store.faiss_index; "
        "print([m for m in sys.modules if m.split('.')[0] in ('prefect', 'mlflow')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- training subsample, adding later


def test_train_size_and_add_vectors(data):
    xb, xq = data
    index = build_index(xb[:400], "cos", "IVF4,Flat", train_size=200, seed=1)
    from replearn.lib.store.faiss_index import add_vectors, set_search_params

    add_vectors(index, xb[400:], "cos")
    assert index.ntotal == N
    set_search_params(index, {"nprobe": 4})
    D1, I1 = search(index, xq, 5, "cos")
    D2, I2 = exact_search(xb, xq, 5, "cos")
    _assert_same_neighbours(D1, I1, D2, I2)
    with pytest.raises(EmbeddingsError, match="without ids"):
        add_vectors(index, xb[:2], "cos", ids=[1000, 1001])
    mapped = build_index(xb[:10], "l2", ids=np.arange(10) + 50)
    with pytest.raises(EmbeddingsError, match="ids are needed"):
        add_vectors(mapped, xb[10:12], "l2")
    add_vectors(mapped, xb[10:12], "l2", ids=[7, 8])
    assert search(mapped, xb[10:11], 1, "l2")[1][0, 0] == 7


@pytest.mark.parametrize("factory,params", [("HNSW16", {"efSearch": 16}), ("IVF16,Flat", {"nprobe": 1})])
def test_search_widening_finds_k_where_the_tuned_settings_fall_short_and_restores_them(factory, params):
    from replearn.lib.store.faiss_index import get_search_params, search_widening, set_search_params

    rng = np.random.default_rng(0)
    xb = rng.standard_normal((4000, 16)).astype(np.float32)
    idx = build_index(xb, "cos", factory=factory)
    set_search_params(idx, params)
    with pytest.raises(EmbeddingsError, match="fewer than k"):
        search(idx, xb[:3], 600, "cos")
    D, I = search_widening(idx, xb[:3], 600, "cos")
    assert I.shape == (3, 600) and (I >= 0).all() and len(set(I[0])) == 600
    assert get_search_params(idx) == params


def test_a_full_disk_while_saving_is_an_oserror_naming_the_index(tmp_path, monkeypatch):
    import errno

    import replearn.lib.store.faiss_index as fi

    def full(index, path):
        raise RuntimeError(f"Error in void faiss::write_index: write error in {path}: 3939 != 13183 "
                           "(No space left on device)")

    monkeypatch.setattr(fi.faiss, "write_index", full)
    idx = build_index(np.eye(8, dtype=np.float32), "ip")
    with pytest.raises(OSError) as e:
        save_index(idx, tmp_path / "index.faiss", metric="ip")
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(tmp_path / "index.faiss")
    assert list(tmp_path.iterdir()) == []  # nothing half-written
