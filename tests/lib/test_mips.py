"""MIPS through the one-extra-coordinate reduction to L2 (Bachrach et al. 2014) equals exact MIPS."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.faiss_index import set_search_params
from replearn.lib.store.index_tuning import build_tuned_index
from replearn.lib.store.mips import (
    build_mips_index,
    exact_mips,
    mips_augment_database,
    mips_augment_queries,
    search_mips,
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    # unnormalised, norms spread over two orders of magnitude (like word2vec's U by frequency)
    xb = rng.standard_normal((1500, 12)) * rng.lognormal(0, 1.0, (1500, 1))
    xq = rng.standard_normal((60, 12)) * rng.lognormal(0, 1.0, (60, 1))
    return xb.astype(np.float32), xq.astype(np.float32)


def _loop_mips(xb, xq, k):
    ip = xq.astype(np.float64) @ xb.astype(np.float64).T
    I = np.argsort(-ip, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(ip, I, axis=1), I


def test_augmentation_makes_l2_order_equal_ip_order(data):
    xb, xq = data
    xa, m = mips_augment_database(xb)
    assert xa.shape == (1500, 13) and np.allclose(np.linalg.norm(xa, axis=1), m, rtol=1e-5)
    qa = mips_augment_queries(xq)
    assert qa.shape == (60, 13) and (qa[:, -1] == 0).all()
    d2 = ((qa[:, None, :].astype(np.float64) - xa[None].astype(np.float64)) ** 2).sum(-1)
    ip = xq.astype(np.float64) @ xb.astype(np.float64).T
    np.testing.assert_allclose(d2, (xq.astype(np.float64) ** 2).sum(1)[:, None] + m**2 - 2 * ip, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("factory", ["Flat", "HNSW32", "IVF8,Flat"])
def test_search_mips_equals_exact(data, factory):
    xb, xq = data
    index, m = build_mips_index(xb, factory)
    if factory != "Flat":  # exhaustive settings: the approximate structures must not change the answer
        set_search_params(index, {"efSearch": 1500} if "HNSW" in factory else {"nprobe": 8})
    D, I = search_mips(index, xq, 10, m)
    De, Ie = _loop_mips(xb, xq, 10)
    assert I.shape == (60, 10) and (I >= 0).all()
    np.testing.assert_allclose(D, De, rtol=1e-4, atol=1e-3 * m * m)
    assert (I == Ie).mean() > 0.99  # ids differ only at numerical ties
    D2, I2 = exact_mips(xb, xq, 10)
    assert (I2 == Ie).mean() > 0.99


def test_mips_differs_from_cosine_and_l2(data):
    xb, xq = data
    index, m = build_mips_index(xb)
    _, I = search_mips(index, xq, 1, m)
    from replearn.lib.store.faiss_index import exact_search

    _, Icos = exact_search(xb, xq, 1, "cos")
    assert (I != Icos).any()  # long vectors win under inner product


def test_tuned_mips_index(data):
    xb, xq = data
    ids = np.arange(len(xb)) + 100
    index, rep = build_tuned_index(xb, "mips", ids=ids, choice_kwargs={"flat_max": 100}, n_queries=100)
    assert rep["factory"] == "HNSW32" and rep["mips_max_norm"] > 0 and rep["tuning"]["reached"]
    D, I = search_mips(index, xq, 10, rep["mips_max_norm"])
    _, Ie = _loop_mips(xb, xq, 10)
    hits = np.mean([len(set(a) & set(b + 100)) / 10 for a, b in zip(I, Ie)])
    assert hits >= 0.9


def test_mips_errors(data):
    xb, xq = data
    index, m = build_mips_index(xb)
    with pytest.raises(EmbeddingsError, match="un-augmented queries of dimension 12"):
        search_mips(index, mips_augment_queries(xq), 5, m)
    with pytest.raises(EmbeddingsError, match="all inner products are 0"):
        mips_augment_database(np.zeros((3, 4)))
    with pytest.raises(EmbeddingsError, match="below the norm"):
        mips_augment_database(xb, max_norm=0.5)
    bad = xq.copy()
    bad[4, 0] = np.nan
    with pytest.raises(EmbeddingsError, match="positions 4"):
        search_mips(index, bad, 5, m)
