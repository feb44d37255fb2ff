"""Tuning nprobe / efSearch to a target recall@10 on clustered data; measured recall and latency in the sidecar."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.faiss_index import (
    build_index,
    exact_search,
    get_search_params,
    load_index,
    save_index,
    search,
    set_search_params,
    sidecar_path,
)
from replearn.lib.store.index_tuning import build_tuned_index, tune_index, tuning_metrics


def _mixture(n, d=16, comps=20, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((comps, d)).astype(np.float32) * 3
    c = rng.integers(0, comps, n)
    return (centres[c] + rng.standard_normal((n, d)).astype(np.float32)).astype(np.float32)


@pytest.fixture(scope="module")
def clustered():
    x = _mixture(6000 + 300)
    return x[:6000], x[6000:]


def _recall(I, E):
    return float(np.mean([len(set(a) & set(b)) / E.shape[1] for a, b in zip(I, E)]))


@pytest.mark.parametrize("factory,param", [("IVF64,Flat", "nprobe"), ("HNSW16", "efSearch")])
def test_tune_index_reaches_target_on_held_out_queries(clustered, factory, param):
    xb, xq = clustered
    index = build_index(xb, "l2", factory)
    t = tune_index(index, xb, xq[:150], metric="l2", target_recall=0.95)
    assert t["param"] == param and t["reached"] and t["recall_at_k"] >= t["recall_lower_bound"] >= 0.95
    assert get_search_params(index) == t["params"] and t["params"][param] == t["value"]
    assert t["ms_per_query"] > 0 and t["queries"] == "held-out"
    # smallest value on the grid (before any max_codes cap): the previous one tried fell short of the bound
    grid_value = t["tried"][-1]["value"]
    assert t["tried"][-1]["recall_lcb"] >= 0.95
    if len(t["tried"]) > 1:
        assert t["tried"][-2]["recall_lcb"] < 0.95
    if param == "nprobe":
        assert grid_value <= t["value"] <= 2 * grid_value and t["codes_per_query"] > 0
    # independent check on other held-out queries
    _, I = search(index, xq[150:], 10, "l2")
    _, E = exact_search(xb, xq[150:], 10, "l2")
    assert _recall(I, E) >= 0.9


def test_lower_confidence_bound_and_plain_mean(clustered):
    from replearn.lib.store.index_tuning import recall_lower_bound

    per = np.array([1.0, 0.9, 0.8, 1.0])
    assert recall_lower_bound(per, 0) == pytest.approx(0.925)
    assert recall_lower_bound(per, 1.645) == pytest.approx(0.925 - 1.645 * per.std(ddof=1) / 2)
    assert recall_lower_bound(np.ones(50), 1.645) == 1.0
    xb, xq = clustered
    index = build_index(xb, "l2", "IVF64,Flat")
    plain = tune_index(index, xb, xq[:150], metric="l2", confidence_z=0, cap_codes=False)
    sure = tune_index(index, xb, xq[:150], metric="l2", cap_codes=False)
    assert plain["recall_lower_bound"] == plain["recall_at_k"] >= 0.95 and plain["params"] == {"nprobe": plain["value"]}
    assert sure["value"] >= plain["value"] and sure["recall_lower_bound"] >= 0.95
    with pytest.raises(EmbeddingsError, match="confidence_z"):
        tune_index(index, xb, xq[:10], metric="l2", confidence_z=-1)


def test_max_codes_cap_scans_fewer_vectors_and_survives_save_load(tmp_path, clustered):
    xb, xq = clustered
    index = build_index(xb, "l2", "IVF64,Flat")
    plain = tune_index(index, xb, xq, metric="l2", cap_codes=False)
    capped = tune_index(index, xb, xq, metric="l2")
    assert capped["reached"] and capped["recall_lower_bound"] >= 0.95
    assert capped["codes_per_query"] <= plain["codes_per_query"]
    if "max_codes" in capped["params"]:  # chosen only when it scans >= 3 % fewer vectors
        assert capped["codes_per_query"] < 0.97 * plain["codes_per_query"] and capped["capped"]
        assert faiss.extract_index_ivf(index).max_codes == capped["params"]["max_codes"]
    p = save_index(index, tmp_path / "i.faiss", metric="l2", tuning=capped)
    set_search_params(index, {"nprobe": 1, "max_codes": 0})
    loaded, meta = load_index(p)
    assert get_search_params(loaded) == capped["params"] == meta["search_params"]
    # the cap holds on other queries from the same distribution
    _, I = search(loaded, xq, 10, "l2")
    _, E = exact_search(xb, xq, 10, "l2")
    assert _recall(I, E) >= 0.93


def test_tune_with_database_sample_excludes_self(clustered):
    xb, _ = clustered
    index = build_index(xb, "l2", "IVF64,Flat")
    t = tune_index(index, xb, metric="l2", n_queries=200, target_recall=0.9)
    assert t["queries"].startswith("database sample") and t["n_queries"] == 200 and t["reached"]


def test_unreachable_target_keeps_largest_value_and_says_so(clustered):
    xb, xq = clustered
    index = build_index(xb, "l2", "IVF16,PQ2", train_size=1000)  # 2-byte codes: recall stays low
    t = tune_index(index, xb, xq[:50], metric="l2", target_recall=0.99)
    assert not t["reached"] and t["value"] == 16 and t["recall_at_k"] < 0.99


def test_build_tuned_index_end_to_end_and_sidecar(tmp_path, clustered):
    xb, xq = clustered
    ids = np.arange(len(xb)) * 3 + 7
    index, rep = build_tuned_index(xb, "cos", ids=ids, choice_kwargs={"flat_max": 1000}, n_queries=300)
    assert rep["factory"] == "HNSW32" and rep["tuning"]["reached"] and index.ntotal == len(xb)
    assert "held out" in rep["tuning"]["queries"]
    D, I = search(index, xq, 10, "cos")
    assert (I >= 0).all() and np.isin(I, ids).all()  # ids, never -1
    _, E = exact_search(xb, xq, 10, "cos", ids=ids)
    assert _recall(I, E) >= 0.9
    p = save_index(index, tmp_path / "e.faiss", metric="cos", tuning=rep)
    meta = json.loads(sidecar_path(p).read_text())
    assert meta["factory"] == "HNSW32" and meta["recall_at_10"] == rep["tuning"]["recall_at_k"]
    assert meta["search_params"] == {"efSearch": rep["tuning"]["value"]} and meta["tuning"]["tuning"]["reached"]
    assert meta["build_seconds"] == rep["build_seconds"]
    # the tuned parameter comes back on load even if the saved index was changed afterwards
    set_search_params(index, {"efSearch": 999})
    loaded, m2 = load_index(p)
    assert get_search_params(loaded) == {"efSearch": rep["tuning"]["value"]}
    m = tuning_metrics(rep)
    assert set(m) >= {"index.recall_at_10", "index.ms_per_query", "index.queries_per_second", "index.efSearch",
                      "index.build_seconds"}


def test_build_tuned_index_ivf_and_flat(clustered):
    xb, xq = clustered
    index, rep = build_tuned_index(xb, "l2", choice_kwargs={"flat_max": 1000, "hnsw_max": 1000})
    assert rep["factory"].startswith("IVF") and rep["tuning"]["param"] == "nprobe" and rep["tuning"]["reached"]
    _, I = search(index, xq, 10, "l2")
    _, E = exact_search(xb, xq, 10, "l2")
    assert _recall(I, E) >= 0.9
    flat, rep = build_tuned_index(xb[:500], "ip")
    assert rep["factory"] == "Flat" and rep["tuning"]["recall_at_k"] == 1.0 and rep["tuning"]["value"] is None


def test_set_search_params_errors(clustered):
    xb, _ = clustered
    with pytest.raises(EmbeddingsError, match="no search parameter 'nprobe'"):
        set_search_params(build_index(xb[:100], "l2"), {"nprobe": 4})
    with pytest.raises(EmbeddingsError, match=">= 1"):
        set_search_params(build_index(xb[:100], "l2", "HNSW8"), {"efSearch": 0})
    with pytest.raises(EmbeddingsError, match="max_codes must be an int >= 0"):
        set_search_params(build_index(xb, "l2", "IVF8,Flat"), {"max_codes": -1})
    with pytest.raises(EmbeddingsError, match="no search parameter 'quantizer_efSearch'"):
        set_search_params(build_index(xb, "l2", "IVF8,Flat"), {"quantizer_efSearch": 16})
    hq = build_index(xb, "l2", "IVF16_HNSW8,Flat")
    set_search_params(hq, {"nprobe": 3, "quantizer_efSearch": 24, "max_codes": 500})
    assert get_search_params(hq) == {"nprobe": 3, "quantizer_efSearch": 24, "max_codes": 500}
    with pytest.raises(EmbeddingsError, match="target_recall"):
        tune_index(build_index(xb[:100], "l2"), xb[:100], metric="l2", target_recall=1.5)


def test_short_results_are_never_padded_with_minus_one(clustered):
    xb, xq = clustered
    index = build_index(xb, "l2", "IVF64,Flat")
    set_search_params(index, {"nprobe": 1})
    raw_D, raw_I = index.search(xq[:20], 500)
    assert (raw_I == -1).any()  # FAISS itself pads
    with pytest.raises(EmbeddingsError, match="fewer than k=500"):
        search(index, xq[:20], 500, "l2")
    t = tune_index(index, xb, xq[:20], metric="l2", k=500, target_recall=0.5)
    assert t["recall_at_k"] >= 0.5
    _, I = search(index, xq[:20], 500, "l2")
    assert (I >= 0).all()
