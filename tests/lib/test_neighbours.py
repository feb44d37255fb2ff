"""Nearest-neighbour tables and default probe words."""

import logging

import numpy as np
import pytest

from replearn.lib.eval.neighbours import PROBE_WORDS, NeighbourTable, default_probes, nearest_neighbours
from replearn.lib.vectors import KeyedVectors


def _kv(words, seed=0, d=8):
    rng = np.random.default_rng(seed)
    return KeyedVectors(words, rng.standard_normal((len(words), d)).astype(np.float32))


@pytest.fixture(scope="module")
def kv():
    return _kv(["the", "king", "queen", "man", "woman", "city", "Paris"] + [f"w{i}" for i in range(100)])


def test_rows_match_most_similar(kv):
    table = nearest_neighbours(kv, ["king", "city"], topn=4)
    assert isinstance(table, list) and isinstance(table, NeighbourTable)
    assert len(table) == 8 and table.skipped == []
    assert set(table[0]) == {"probe", "rank", "neighbour", "similarity"}
    for probe in ("king", "city"):
        rows = [r for r in table if r["probe"] == probe]
        assert [r["rank"] for r in rows] == [1, 2, 3, 4]
        ref = kv.most_similar(probe, topn=4)
        assert [r["neighbour"] for r in rows] == [w for w, _ in ref]
        np.testing.assert_allclose([r["similarity"] for r in rows], [s for _, s in ref], atol=1e-6)
        assert all(r["neighbour"] != probe for r in rows)
        assert all(isinstance(r["similarity"], float) and -1 <= r["similarity"] <= 1 for r in rows)


def test_oov_probes_skipped_and_reported(kv, caplog):
    with caplog.at_level(logging.WARNING):
        table = nearest_neighbours(kv, ["nope", "queen", "Queen", "queen"], topn=2)
    assert table.skipped == ["nope", "Queen"]
    assert [r["probe"] for r in table] == ["queen", "queen"]  # duplicates collapsed
    assert "nope" in caplog.text
    assert nearest_neighbours(kv, ["nope"]) == [] and nearest_neighbours(kv, []) == []


def test_topn_larger_than_vocab():
    small = _kv(["a", "b", "c"])
    assert len(nearest_neighbours(small, ["a"], topn=10)) == 2


def test_default_probes_prefers_fixed_list(kv):
    probes = default_probes(kv, n=3)
    assert probes == ["king", "woman", "city"]
    assert all(p in PROBE_WORDS for p in probes)


def test_default_probes_cased_vocab_and_fill():
    kv = _kv(["the", "of", "France", "KING", "12", "apple", "banana", "x"])
    probes = default_probes(kv, n=4)
    assert probes[:2] == ["KING", "France"]
    assert probes[2:] == ["apple", "banana"]  # filled with frequent content words, skipping 'the', '12'
    assert len(set(probes)) == 4


def test_default_probes_never_empty():
    kv = _kv(["the", "of", "12"])
    assert default_probes(kv, n=6) == ["the", "of", "12"]
    assert len(nearest_neighbours(kv, default_probes(kv), topn=1)) == 3


def test_default_probes_skip_fixed_words_that_are_rare_in_this_corpus():
    # a technical corpus: 'city' exists but sits among the rarest words; frequent content words stand in for it
    words = ["the", "kernel", "module", "driver", "memory", "device", "buffer", "thread", "socket", "packet"] + [
        f"w{i}" for i in range(40)] + ["city"]
    probes = default_probes(_kv(words), n=3)
    assert "city" not in probes and probes == ["kernel", "module", "driver"]
