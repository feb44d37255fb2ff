"""search_id_range: results equal brute force restricted to the id range, for Flat, HNSW and IVF."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.faiss_index import build_index
from replearn.lib.store.filtered_search import search_id_range


@pytest.mark.parametrize("factory", ["Flat", "HNSW16", "IVF4,Flat"])
def test_results_equal_brute_force_inside_the_range(factory):
    rng = np.random.default_rng(0)
    xb = rng.normal(size=(400, 8)).astype(np.float32)
    xq = rng.normal(size=(5, 8)).astype(np.float32)
    index = build_index(xb, "cos", factory, ids=np.arange(400) + 10)
    if factory.startswith("IVF"):
        import faiss

        faiss.extract_index_ivf(index).nprobe = 4  # all lists: exact
    D, I = search_id_range(index, xq, 7, "cos", 110, 210)
    xbn = xb / np.linalg.norm(xb, axis=1, keepdims=True)
    xqn = xq / np.linalg.norm(xq, axis=1, keepdims=True)
    sims = xqn @ xbn[100:200].T                                               # ids 110..209 = rows 100..199
    want = np.argsort(-sims, axis=1)[:, :7] + 110
    assert I.shape == (5, 7) and ((I >= 110) & (I < 210)).all()
    if factory != "HNSW16":
        np.testing.assert_array_equal(I, want)
        np.testing.assert_allclose(D, np.take_along_axis(sims, want - 110, axis=1), atol=1e-5)


def test_k_is_truncated_to_the_range_and_bad_ranges_raise():
    xb = np.eye(6, dtype=np.float32)
    index = build_index(xb, "ip")
    D, I = search_id_range(index, xb[:1], 10, "ip", 2, 4)
    assert sorted(I[0].tolist()) == [2, 3] and (I >= 0).all()
    with pytest.raises(EmbeddingsError, match="empty"):
        search_id_range(index, xb[:1], 3, "ip", 4, 4)
    with pytest.raises(EmbeddingsError, match="k must be"):
        search_id_range(index, xb[:1], 0, "ip", 0, 4)


def test_works_after_faiss_torch_utils_replaced_search():
    """faiss.contrib.torch_utils (pytorch-metric-learning imports it) swaps Index.search for one without params."""
    import faiss.contrib.torch_utils  # noqa: F401  (the patch applies to every index class, for the process)

    rng = np.random.default_rng(1)
    xb = rng.normal(size=(50, 4)).astype(np.float32)
    index = build_index(xb, "cos", "Flat", ids=np.arange(50))
    D, I = search_id_range(index, xb[:2], 3, "cos", 10, 20)
    assert I.shape == (2, 3) and ((I >= 10) & (I < 20)).all()
