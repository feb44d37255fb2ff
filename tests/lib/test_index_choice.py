"""choose_index: Flat / HNSW / IVF-Flat / IVF-PQ by size and budget; nlist capped at 39 points per centroid."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.faiss_index import build_index
from replearn.lib.store.index_choice import (
    MIN_POINTS_PER_CENTROID,
    cap_nlist,
    choose_index,
    estimate_index_bytes,
    suggest_nlist,
)


def test_small_sets_get_flat():
    c = choose_index(5_000, 128, "cos")
    assert c.factory == "Flat" and c.search_param is None and c.train_size == 0
    assert c.bytes_estimate == 5_000 * 128 * 4


def test_moderate_sets_get_hnsw_when_it_fits():
    c = choose_index(100_000, 128, "l2")
    assert c.factory == "HNSW32" and c.search_param == "efSearch"


def test_large_sets_get_ivf_flat_with_nlist_from_n():
    c = choose_index(1_000_000, 128, "l2")
    assert c.factory == "IVF4096,Flat" and c.nlist == 4096 and c.search_param == "nprobe"
    assert MIN_POINTS_PER_CENTROID * c.nlist <= c.train_size <= 1_000_000
    assert suggest_nlist(100_000) == 1024 and suggest_nlist(10_000_000) == 16384


def test_hnsw_over_budget_falls_back_to_ivf():
    n, d = 100_000, 128
    budget = estimate_index_bytes("ivf_flat", n, d, nlist=1024) + 1000
    assert budget < estimate_index_bytes("hnsw", n, d)
    c = choose_index(n, d, "l2", budget)
    assert c.kind == "ivf_flat"


def test_tight_budget_gets_pq_with_opq():
    n, d = 1_000_000, 128
    c = choose_index(n, d, "l2", memory_budget_bytes=64 * n)
    assert c.kind == "ivf_pq" and c.bytes_estimate <= 64 * n
    assert c.factory == f"OPQ{c.pq_m},IVF{c.nlist},PQ{c.pq_m}" and d // c.pq_m >= 4
    assert c.train_size >= 256
    big = choose_index(n, d, "l2", memory_budget_bytes=estimate_index_bytes("ivf_pq", n, d, nlist=4096, pq_m=64))
    assert big.factory == "IVF4096,PQ64"  # d/m = 2: no OPQ


def test_nothing_fits_says_how_much_is_needed():
    with pytest.raises(EmbeddingsError, match="smallest .* needs about"):
        choose_index(1_000_000, 128, "l2", memory_budget_bytes=1_000_000)


def test_nlist_cap_gives_a_message_not_an_assertion():
    nl, note = cap_nlist(4096, 50_000)
    assert nl == 1024 and "capped from 4096 to 1024" in note and "39" in note
    assert cap_nlist(64, 39 * 64) == (64, None)
    c = choose_index(50_000, 16, "l2", memory_budget_bytes=50_000 * 16 * 4 - 1, nlist=4096)
    assert c.nlist == 1024 and any("capped" in s for s in c.notes)
    with pytest.raises(EmbeddingsError, match="too few vectors to train an IVF index: 20 < 39"):
        cap_nlist(16, 20)


def test_pq_needs_256_training_points():
    with pytest.raises(EmbeddingsError, match="PQ needs at least 256"):
        choose_index(200, 8, "l2", memory_budget_bytes=200 * 8 * 4 + 200 * 8 + 100, flat_max=0, hnsw_max=0)


def test_build_index_refuses_untrainable_factories_clearly():
    x = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)
    with pytest.raises(EmbeddingsError, match=r"IVF256 needs at least 256 training vectors .* use IVF2 or fewer"):
        build_index(x, "l2", "IVF256,Flat")
    with pytest.raises(EmbeddingsError, match="PQ with 256 centroids .* needs at least 256 training vectors, got 100"):
        build_index(x, "l2", "IVF2,PQ4")
    with pytest.raises(EmbeddingsError, match="got 150"):
        build_index(np.vstack([x] * 4), "l2", "IVF2,PQ4", train_size=150)


def test_mips_adds_a_dimension_and_bad_args():
    c = choose_index(1000, 7, "mips")
    assert c.bytes_estimate == 1000 * 8 * 4 and "Bachrach" in c.notes[0]
    for bad in (dict(n=0, d=4), dict(n=10, d=0), dict(n=10, d=4, metric="dot"), dict(n=10, d=4, memory_budget_bytes=0)):
        with pytest.raises(EmbeddingsError):
            choose_index(**bad)
