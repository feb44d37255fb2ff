"""lib/multisense/warm_start.py: a grown vocabulary's starting state, and train_multisense starting from it."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from replearn.lib.errors import ReplearnInputError
from replearn.lib.multisense.config import MultiSenseConfig
from replearn.lib.multisense.model import MultiSenseVectors
from replearn.lib.multisense.objective import prior_from_counts
from replearn.lib.multisense.senses import senses_per_word
from replearn.lib.multisense.trainer import StartState, init_state, train_multisense
from replearn.lib.multisense.warm_start import grow_state
from replearn.lib.text.vocab import keep_probability, noise_distribution

D = 4


def old_model(max_senses: int = 3, smoothing: float = 0.5) -> MultiSenseVectors:
    """Four words with 3, 2, 1 and 1 senses (as after pruning), random vectors and priors."""
    rng = np.random.default_rng(0)
    words, counts, k = ["the", "cat", "sat", "on"], np.array([500, 120, 40, 30]), np.array([3, 2, 1, 1])
    start = np.concatenate([[0], np.cumsum(k)])
    prior = rng.random(start[-1]) + 0.1
    prior /= np.repeat(np.add.reduceat(prior, start[:-1]), k)
    cfg = MultiSenseConfig(dim=D, max_senses=max_senses, prior_smoothing=smoothing, min_count=1)
    return MultiSenseVectors(words, counts, start, rng.normal(size=(start[-1], D)), prior,
                             rng.normal(size=(4, D)), noise_distribution(counts), cfg)


def test_old_words_keep_senses_context_and_prior_and_new_words_start_as_a_fresh_run():
    old = old_model()
    words = ["the", "dog", "cat", "mat", "sat"]  # re-sorted by merged counts; "on" dropped, two new words
    counts = np.array([900, 300, 150, 60, 50])
    keep = np.array([0.5, 0.8, 0.9, 1.0, 1.0])
    cfg = MultiSenseConfig(dim=D, max_senses=3, sense_min_count=100, sense_count_base=2.0, min_count=1, seed=7)
    state, kept = grow_state(words, counts, keep, old, cfg)
    assert kept == 3 and state.sv.dtype == state.syn1.dtype == np.float32 and state.sv.flags.c_contiguous
    fresh_sv, _, fresh_start = init_state(counts, cfg)
    fresh_k = senses_per_word(counts, 3, 100, 2.0)
    beta = old.config.prior_smoothing
    for i, w in enumerate(words):  # a plain loop as the reference
        block = slice(state.sense_start[i], state.sense_start[i + 1])
        if w in old:
            x = old.word_id(w)
            np.testing.assert_array_equal(state.sv[block], old.sense_vectors(w))
            np.testing.assert_array_equal(state.syn1[i], old.context[x])
            n = old.counts[x] * keep[i]
            k = old.n_senses(w)
            expect = [max(0.0, p * (n + k * beta) - beta) for p in old.sense_prior(w)]
            np.testing.assert_allclose(state.sense_counts[block], expect)
            # the counts give back the old prior under the old smoothing (the prior's M-step)
            np.testing.assert_allclose(state.sense_counts[block] + beta,
                                       old.sense_prior(w) * (state.sense_counts[block].sum() + k * beta))
        else:
            assert state.sense_start[i + 1] - state.sense_start[i] == fresh_k[i]
            np.testing.assert_array_equal(state.sv[block], fresh_sv[fresh_start[i]:fresh_start[i + 1]])
            assert np.all(np.abs(state.sv[block]) <= (0.5 + cfg.init_noise) / D)
            assert np.all(state.syn1[i] == 0) and np.all(state.sense_counts[block] == 0)
    state.check(len(words), cfg)


def test_prior_from_the_grown_counts_is_the_old_prior():
    old = old_model(smoothing=1.0)
    cfg = MultiSenseConfig(dim=D, max_senses=3, min_count=1)
    state, _ = grow_state(old.words, old.counts, np.ones(4), old, cfg)
    np.testing.assert_allclose(prior_from_counts(state.sense_counts, state.sense_start, 1.0), old.prior)


def test_another_dimension_or_max_senses_is_refused_naming_the_fix():
    old = old_model()
    with pytest.raises(ReplearnInputError, match="pass --dim 4"):
        grow_state(["the"], np.array([5]), np.ones(1), old, MultiSenseConfig(dim=8, max_senses=3))
    with pytest.raises(ReplearnInputError, match="pass --max-senses 3"):
        grow_state(["the"], np.array([5]), np.ones(1), old, MultiSenseConfig(dim=D, max_senses=2))


def _corpus(tmp_path, words):
    from replearn.lib.word2vec.corpus import encode_corpus

    shard = tmp_path / "tokens" / "part-00000.parquet"
    shard.parent.mkdir()
    pq.write_table(pa.table({"tokens": [["the", "cat", "sat", "dog"] * 5] * 40}), shard)  # "mat" never occurs
    return encode_corpus([shard], tuple(words), tmp_path / "enc")


def test_train_multisense_starts_from_the_state_with_no_warm_up(tmp_path):
    old = old_model()
    words = ["the", "cat", "sat", "dog", "mat"]
    counts = np.array([700, 320, 240, 200, 20])
    corpus = _corpus(tmp_path, words)
    cfg = MultiSenseConfig(dim=D, max_senses=3, sense_min_count=100, epochs=2, warmup_epochs=1, alpha=1e-9,
                           min_alpha=1e-9, threads=1, sample=0, prune_threshold=0, min_count=1)
    keep = keep_probability(counts, 0)
    start, _ = grow_state(words, counts, keep, old, cfg)
    copies = [a.copy() for a in (start.sv, start.syn1, start.sense_start, start.sense_counts)]
    hook = []
    result = train_multisense(corpus, counts, cfg, keep_prob=keep, noise_probs=noise_distribution(counts), init=start,
                              after_sense_init=lambda *a: hook.append(a))
    assert not hook  # no warm-up, so no sense init from it
    np.testing.assert_array_equal(result.sense_start, start.sense_start)
    np.testing.assert_allclose(result.sv, start.sv, atol=1e-5)
    np.testing.assert_allclose(result.syn1, start.syn1, atol=1e-5)
    assert all(np.array_equal(a, b) for a, b in zip((start.sv, start.syn1, start.sense_start, start.sense_counts),
                                                       copies))  # copied, never changed
    # "mat" is not in the new text: its prior stays the one the old counts give; "the" gets new counts too
    mat = slice(start.sense_start[4], start.sense_start[5])
    np.testing.assert_allclose(result.prior[mat], prior_from_counts(start.sense_counts, start.sense_start,
                                                                    cfg.prior_smoothing)[mat])
    assert not np.allclose(result.prior[0:3], old.sense_prior("the"))  # this run's counts are added to the old
    with pytest.raises(ValueError, match="does not fit"):
        train_multisense(corpus, counts, cfg, keep_prob=keep, noise_probs=noise_distribution(counts),
                         init=StartState(start.sv[:, :2], start.syn1[:, :2], start.sense_start, start.sense_counts))


def test_a_warm_start_resumes_only_from_its_own_checkpoints(tmp_path):
    old = old_model()
    words = ["the", "cat", "sat", "dog", "mat"]
    counts = np.array([700, 320, 240, 200, 20])
    corpus = _corpus(tmp_path, words)
    cfg = MultiSenseConfig(dim=D, max_senses=3, sense_min_count=100, epochs=2, threads=1, sample=0, min_count=1,
                           chunk_tokens=200)
    kw = dict(keep_prob=keep_probability(counts, 0), noise_probs=noise_distribution(counts))
    start, _ = grow_state(words, counts, kw["keep_prob"], old, cfg)
    a = train_multisense(corpus, counts, cfg, init=start, **kw)
    b = train_multisense(corpus, counts, cfg, init=start, checkpoint_dir=tmp_path / "ck", **kw)
    np.testing.assert_array_equal(a.sv, b.sv)
    (tmp_path / "ck" / "epoch-0002.npz").unlink()
    shutil.copytree(tmp_path / "ck", tmp_path / "other")
    fresh = train_multisense(corpus, counts, cfg, checkpoint_dir=tmp_path / "other", **kw)  # not a warm start
    assert fresh.resumed_from_epoch == 0
    c = train_multisense(corpus, counts, cfg, init=start, checkpoint_dir=tmp_path / "ck", **kw)
    assert c.resumed_from_epoch == 1
    np.testing.assert_array_equal(a.sv, c.sv)
    np.testing.assert_array_equal(a.prior, c.prior)
