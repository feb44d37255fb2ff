"""Tests for replearn.lib.text.vocab: counts, pruning, ordering, sampling formulas, round trip."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from replearn.lib.errors import VocabularyError
from replearn.lib.text.config import TokenizerConfig
from replearn.lib.text.tokenize import tokenize_corpus
from replearn.lib.text.vocab import (
    Vocabulary,
    build_vocabulary,
    count_tokens,
    keep_probability,
    noise_distribution,
    read_vocabulary,
    write_vocabulary,
)


def _zipf_docs(n_docs: int = 300, seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    words = [f"w{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(200)]
    p = 1.0 / np.arange(1, len(words) + 1)
    p /= p.sum()
    return [list(rng.choice(words, size=rng.integers(1, 30), p=p)) for _ in range(n_docs)]


@pytest.fixture
def token_dir(tmp_path: Path) -> tuple[Path, list[list[str]]]:
    docs = _zipf_docs()
    src = tmp_path / "c.txt"
    src.write_text("\n".join(" ".join(d) for d in docs) + "\n")
    tokenize_corpus(src, tmp_path / "tokens", TokenizerConfig(), shard_rows=70)  # 5 shards
    return tmp_path / "tokens", docs


def test_count_tokens_matches_counter(token_dir):
    path, docs = token_dir
    df = count_tokens(path)
    assert df.columns == ["token", "count"]
    assert df.schema["count"] == pl.Int64
    assert dict(zip(df["token"].to_list(), df["count"].to_list())) == Counter(w for d in docs for w in d)


def test_build_vocabulary_order_and_pruning():
    counts = pl.DataFrame({"token": ["b", "a", "c", "d", "e", "a"], "count": [5, 3, 5, 1, 9, 2]})
    v = build_vocabulary(counts, min_count=2)
    # a's counts are summed (5); ties broken by word ascending
    assert v.words == ("e", "a", "b", "c")
    assert v.counts.tolist() == [9, 5, 5, 5]
    assert v.counts.dtype == np.int64
    assert (len(v), v.total, v.min_count, v.max_vocab) == (4, 24, 2, None)
    assert v.index == {"e": 0, "a": 1, "b": 2, "c": 3}
    assert "a" in v and "d" not in v
    with pytest.raises(ValueError):
        v.counts[0] = 1  # read-only
    capped = build_vocabulary(counts, min_count=1, max_vocab=2)
    assert capped.words == ("e", "a") and capped.max_vocab == 2


def test_build_vocabulary_from_shards(token_dir):
    path, docs = token_dir
    v = build_vocabulary(count_tokens(path), min_count=3)
    expected = sorted(((w, c) for w, c in Counter(w for d in docs for w in d).items() if c >= 3),
                      key=lambda wc: (-wc[1], wc[0]))
    assert list(zip(v.words, v.counts.tolist())) == expected


def test_pruned_to_nothing_raises():
    counts = pl.DataFrame({"token": ["rare", "once"], "count": [3, 1]})
    with pytest.raises(VocabularyError) as e:
        build_vocabulary(counts, min_count=5)
    msg = str(e.value)
    assert "min_count=5 pruned all 2 distinct words" in msg
    assert "'rare', occurs 3 times" in msg and "--min-count" in msg
    with pytest.raises(VocabularyError, match="empty"):
        build_vocabulary(pl.DataFrame(schema={"token": pl.String, "count": pl.Int64}))


def test_build_vocabulary_validation():
    counts = pl.DataFrame({"token": ["a"], "count": [1]})
    with pytest.raises(ValueError, match="min_count"):
        build_vocabulary(counts, min_count=0)
    with pytest.raises(ValueError, match="max_vocab"):
        build_vocabulary(counts, max_vocab=0)
    with pytest.raises(VocabularyError, match="count"):
        build_vocabulary(pl.DataFrame({"token": ["a"]}))
    with pytest.raises(VocabularyError, match="repeat"):
        Vocabulary(words=("a", "a"), counts=np.array([2, 1]))
    with pytest.raises(VocabularyError, match="descending"):
        Vocabulary(words=("a", "b"), counts=np.array([1, 2]))
    with pytest.raises(VocabularyError, match="shape"):
        Vocabulary(words=("a",), counts=np.array([2, 1]))


def test_keep_probability_equals_loop():
    counts = np.array([100_000, 20_000, 5_000, 700, 50, 3, 1], dtype=np.int64)
    for sample in (1e-1, 1e-2, 1e-3, 1e-5):
        total = counts.sum()
        expected = []
        for c in counts:
            t = sample * total
            p = (math.sqrt(c / t) + 1) * t / c
            expected.append(min(p, 1.0))
        got = keep_probability(counts, sample)
        assert got.dtype == np.float64 and got.shape == counts.shape
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        assert np.all((got > 0) & (got <= 1))
    assert keep_probability(counts, 0).tolist() == [1.0] * len(counts)
    with pytest.raises(ValueError):
        keep_probability(counts, -1e-3)
    with pytest.raises(ValueError):
        keep_probability(np.array([1, 0]), 1e-3)


def test_keep_probability_matches_gensim():
    from gensim.models import Word2Vec

    docs = _zipf_docs(n_docs=400, seed=3)
    model = Word2Vec(vector_size=4, min_count=1, sample=1e-2, workers=1)
    model.build_vocab(docs)
    words = list(model.wv.index_to_key)
    counts = np.array([model.wv.get_vecattr(w, "count") for w in words])
    theirs = np.array([model.wv.get_vecattr(w, "sample_int") for w in words]) / (2**32 - 1)
    np.testing.assert_allclose(keep_probability(counts, 1e-2), theirs, atol=1e-8)


def test_noise_distribution_equals_loop():
    counts = np.array([1000, 250, 40, 7, 1], dtype=np.int64)
    for power in (0.75, 1.0, 0.0, 0.5):
        weights = [c**power for c in counts]
        expected = [w / sum(weights) for w in weights]
        got = noise_distribution(counts, power)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        assert math.isclose(got.sum(), 1.0, rel_tol=1e-12)
    with pytest.raises(ValueError):
        noise_distribution(counts, -0.5)
    with pytest.raises(ValueError):
        noise_distribution(np.array([], dtype=np.int64))


def test_vocabulary_round_trip(tmp_path):
    v = build_vocabulary(pl.DataFrame({"token": ["x", "yy", "zé"], "count": [4, 9, 4]}), min_count=2, max_vocab=10)
    path = write_vocabulary(v, tmp_path / "sub" / "vocab.parquet")
    assert sorted(p.name for p in path.parent.iterdir()) == ["vocab.parquet"]  # no temp left
    df = pl.read_parquet(path)
    assert df.schema == {"token": pl.String, "count": pl.Int64, "id": pl.Int64}
    assert df["id"].to_list() == [0, 1, 2]
    back = read_vocabulary(path)
    assert back.words == v.words == ("yy", "x", "zé")
    assert back.counts.tolist() == v.counts.tolist()
    assert (back.min_count, back.max_vocab) == (2, 10)
    assert back.index == v.index
    with pytest.raises(VocabularyError, match="not found") as e:
        read_vocabulary(tmp_path / "missing.parquet")
    assert "missing.parquet" in str(e.value)
