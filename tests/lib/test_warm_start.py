"""lib/word2vec/warm_start.py: a grown vocabulary's starting matrices, and train_sgns starting from them."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.lib.errors import ReplearnInputError
from replearn.lib.word2vec.warm_start import grow_matrices


def test_old_words_keep_their_rows_at_their_new_ids_and_new_words_start_as_word2vec_c():
    rng = np.random.default_rng(0)
    old_words = ["the", "cat", "sat"]
    old_in, old_ctx = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(3, 4)).astype(np.float32)
    words = ["cat", "dog", "the", "mat", "sat"]  # re-sorted by merged counts, two new words
    syn0, syn1, known = grow_matrices(words, old_words, old_in, old_ctx, seed=3)
    assert known.tolist() == [True, False, True, False, True] and syn0.shape == syn1.shape == (5, 4) and syn0.dtype == np.float32
    for i, w in enumerate(words):  # a plain loop as the reference
        if w in old_words:
            np.testing.assert_array_equal(syn0[i], old_in[old_words.index(w)])
            np.testing.assert_array_equal(syn1[i], old_ctx[old_words.index(w)])
        else:
            assert np.all(np.abs(syn0[i]) <= 0.5 / 4) and np.any(syn0[i] != 0) and np.all(syn1[i] == 0)
    assert syn0.flags.c_contiguous and syn0.flags.writeable


def test_mismatched_or_non_finite_matrices_are_refused():
    good = np.zeros((2, 3), np.float32)
    with pytest.raises(ReplearnInputError, match=r"\(3, D\)"):
        grow_matrices(["a"], ["a", "b", "c"], good, good)
    bad = good.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ReplearnInputError, match="NaN"):
        grow_matrices(["a"], ["a", "b"], good, bad)


def test_train_sgns_starts_from_the_given_matrices_and_leaves_them_alone(tmp_path):
    from replearn.lib.word2vec.config import Word2VecConfig
    from replearn.lib.word2vec.corpus import encode_corpus
    from replearn.lib.text.vocab import keep_probability, noise_distribution
    from replearn.lib.word2vec.trainer import train_sgns
    import pyarrow as pa
    import pyarrow.parquet as pq

    words = ["a", "b", "c", "d"]
    shard = tmp_path / "tokens" / "part-00000.parquet"
    shard.parent.mkdir()
    pq.write_table(pa.table({"tokens": [["a", "b", "c", "d"] * 5] * 20}), shard)
    corpus = encode_corpus([shard], tuple(words), tmp_path / "enc")
    counts = np.array([100, 100, 100, 100])
    cfg = Word2VecConfig(dim=3, epochs=1, alpha=1e-9, min_alpha=1e-9, threads=1, sample=0)
    start = (np.full((4, 3), 0.25, np.float32), np.full((4, 3), -0.5, np.float32))
    kept = [m.copy() for m in start]
    result = train_sgns(corpus, counts, cfg, keep_prob=keep_probability(counts, 0), init=start,
                        noise_probs=noise_distribution(counts))
    np.testing.assert_allclose(result.syn0, start[0], atol=1e-5)
    np.testing.assert_allclose(result.syn1, start[1], atol=1e-5)
    assert all(np.array_equal(a, b) for a, b in zip(start, kept))  # copied, never changed
    with pytest.raises(ValueError, match="do not match"):
        train_sgns(corpus, counts, cfg, keep_prob=keep_probability(counts, 0), noise_probs=noise_distribution(counts),
                   init=(start[0][:, :2], start[1][:, :2]))
