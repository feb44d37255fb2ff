"""exact_topk against a plain Python loop on tiny seeded data: ip and l2, k > N, exclusion, ties, blocks."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.lib.errors import ReplearnInputError
from replearn.lib.topk import exact_topk


def _loop(xq, xb, k, metric, exclude=None):
    """Reference: score every (query, row) pair in float64, sort by (score, row), skip excluded rows."""
    D, I = [], []
    for i, q in enumerate(xq.astype(np.float64)):
        skip = set() if exclude is None else {int(e) for e in exclude[i]}
        cand = []
        for j, x in enumerate(xb.astype(np.float64)):
            if j in skip:
                continue
            s = float(((q - x) ** 2).sum()) if metric == "l2" else float(q @ x)
            cand.append((s if metric == "l2" else -s, j))
        cand.sort()
        kk = min(k, len(xb))
        top = cand[:kk]
        pad = kk - len(top)
        fill = np.inf if metric == "l2" else -np.inf
        D.append([s if metric == "l2" else -s for s, _ in top] + [fill] * pad)
        I.append([j for _, j in top] + [-1] * pad)
    return np.array(D), np.array(I, dtype=np.int64)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    return rng.standard_normal((13, 5)).astype(np.float32), rng.standard_normal((40, 5)).astype(np.float32)


@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("batch", [None, 1, 4])
def test_matches_loop(data, metric, batch):
    xq, xb = data
    D, I = exact_topk(xq, xb, 6, metric, batch=batch)
    Dl, Il = _loop(xq, xb, 6, metric)
    assert D.shape == I.shape == (13, 6) and D.dtype == np.float32 and I.dtype == np.int64
    assert (I == Il).all()
    np.testing.assert_allclose(D, Dl, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_k_larger_than_n_returns_all_rows_sorted(data, metric):
    xq, xb = data
    D, I = exact_topk(xq, xb[:7], 50, metric)
    Dl, Il = _loop(xq, xb[:7], 50, metric)
    assert I.shape == (13, 7) and (I == Il).all()
    assert (np.sort(I, axis=1) == np.arange(7)).all()
    np.testing.assert_allclose(D, Dl, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_exclusion(data, metric):
    xq, xb = data
    rng = np.random.default_rng(3)
    excl = rng.integers(-1, 45, (13, 3))  # -1 and >= N are ignored
    D, I = exact_topk(xq, xb, 5, metric, exclude=excl)
    Dl, Il = _loop(xq, xb, 5, metric, excl)
    assert (I == Il).all()
    np.testing.assert_allclose(D, Dl, rtol=1e-5, atol=1e-5)
    for i in range(13):
        assert not set(I[i]) & set(excl[i].tolist())


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_exclusion_leaving_fewer_than_k_pads_with_minus_one(data, metric):
    xq, xb = data
    excl = np.tile(np.arange(3), (13, 1))
    D, I = exact_topk(xq, xb[:5], 10, metric, exclude=excl)
    Dl, Il = _loop(xq, xb[:5], 10, metric, excl)
    assert I.shape == (13, 5) and (I == Il).all()
    assert (I[:, 2:] == -1).all() and np.isinf(D[:, 2:]).all()
    np.testing.assert_allclose(D[:, :2], Dl[:, :2], rtol=1e-5, atol=1e-5)


def test_self_exclusion_on_the_database_itself(data):
    _, xb = data
    _, I = exact_topk(xb, xb, 3, "l2", exclude=np.arange(len(xb))[:, None])
    _, Il = _loop(xb, xb, 3, "l2", np.arange(len(xb))[:, None])
    assert (I == Il).all() and (I != np.arange(len(xb))[:, None]).all()


@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("k", [1, 3, 8, 30])
def test_ties_go_to_the_lower_row(metric, k):
    rng = np.random.default_rng(11)
    xb = rng.integers(0, 2, (30, 3)).astype(np.float64)  # many exact duplicates
    xq = rng.integers(0, 2, (9, 3)).astype(np.float64)
    D, I = exact_topk(xq, xb, k, metric, batch=2)
    Dl, Il = _loop(xq, xb, k, metric)
    assert (I == Il).all() and np.array_equal(D, Dl)


def test_float64_in_float64_out_and_empty_queries(data):
    xq, xb = data
    D, I = exact_topk(xq.astype(np.float64), xb.astype(np.float64), 2)
    assert D.dtype == np.float64
    D, I = exact_topk(xq[:0], xb, 4)
    assert D.shape == I.shape == (0, 4)


def test_bad_arguments(data):
    xq, xb = data
    with pytest.raises(ReplearnInputError, match="one width"):
        exact_topk(xq[:, :3], xb, 2)
    with pytest.raises(ReplearnInputError, match="k must be"):
        exact_topk(xq, xb, 0)
    with pytest.raises(ReplearnInputError, match="metric"):
        exact_topk(xq, xb, 2, "cos")
    with pytest.raises(ReplearnInputError, match="exclude"):
        exact_topk(xq, xb, 2, exclude=np.zeros(13, np.int64))
    with pytest.raises(ReplearnInputError, match="batch"):
        exact_topk(xq, xb, 2, batch=0)


@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("k", [1, 7, 60])
def test_larger_database_matches_a_stable_full_sort(metric, k):
    rng = np.random.default_rng(5)
    xb = rng.standard_normal((3000, 8)).astype(np.float32)
    xb[100:400] = xb[0]  # a block of exact duplicates: ties at and across the k-th place
    xq = np.vstack([rng.standard_normal((40, 8)).astype(np.float32), xb[:3], np.zeros((2, 8), np.float32)])
    S = xq @ xb.T
    key = (np.einsum("ij,ij->i", xq, xq)[:, None] - 2 * S + np.einsum("ij,ij->i", xb, xb)[None, :]
           if metric == "l2" else -S)
    if metric == "l2":
        key = np.maximum(key, 0)
    want = np.argsort(key, axis=1, kind="stable")[:, :k]
    D, I = exact_topk(xq, xb, k, metric, batch=16)
    assert (I == want).all()
    np.testing.assert_array_equal(D, np.take_along_axis(key if metric == "l2" else S, want, axis=1))


def test_nan_scores_come_last():
    xb = np.array([[1.0, 0.0], [np.nan, 0.0], [0.5, 0.0], [2.0, 0.0]])
    D, I = exact_topk(np.array([[1.0, 0.0]]), xb, 4, "ip")
    assert I[0].tolist() == [3, 0, 2, 1] and np.isnan(D[0, 3])


def test_rows_short_of_candidates_fall_back_to_a_full_sort():
    xb = np.full((10, 2), np.nan)
    xb[7], xb[2] = [1.0, 0.0], [3.0, 0.0]
    D, I = exact_topk(np.array([[1.0, 0.0], [-1.0, 0.0]]), xb, 3, "ip")
    assert I.tolist() == [[2, 7, 0], [7, 2, 0]] and np.isnan(D[:, 2]).all()
