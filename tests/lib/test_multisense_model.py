"""Multi-sense query object, config, senses per word, pruning, export, similarity, pseudo-words: bad inputs too."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from replearn.lib.errors import ReplearnInputError, VocabularyError
from replearn.lib.multisense.config import MultiSenseConfig, SenseConfigError
from replearn.lib.multisense.model import FELL_BACK_NOTE, MultiSenseVectors, UnknownWordError
from replearn.lib.multisense.prune import prune_senses
from replearn.lib.multisense.pseudowords import hash_split, choose_pairs
from replearn.lib.multisense.senses import sense_offsets, senses_per_word
from replearn.lib.multisense.similarity import maxsim


def toy_model() -> MultiSenseVectors:
    words = ["bank", "river", "money", "the"]
    start = np.array([0, 2, 3, 4, 5])
    vectors = np.array([[2, 0], [0, 2], [1, 0.1], [0.1, 1], [0.3, 0.3]], dtype=np.float32)
    prior = np.array([0.6, 0.4, 1, 1, 1])
    context = np.array([[0.5, 0.5], [1, 0], [0, 1], [0, 0]], dtype=np.float32)
    return MultiSenseVectors(words, [50, 20, 20, 10], start, vectors, prior, context, np.full(4, 0.25),
                             MultiSenseConfig(negative=2))


def test_posterior_picks_the_sense_of_the_context():
    m = toy_model()
    p = m.posterior("bank", ["river", "unknownword"])
    assert p.best == 0 and not p.fell_back_to_prior and p.ignored == ("unknownword",)
    assert m.posterior("bank", "money money").best == 1
    np.testing.assert_allclose(p.probs.sum(), 1.0)


def test_context_of_only_unknown_words_falls_back_to_prior(caplog):
    m = toy_model()
    with caplog.at_level(logging.WARNING):
        p = m.posterior("bank", ["zzz", "qqq"])
    assert p.fell_back_to_prior and p.note == FELL_BACK_NOTE
    np.testing.assert_allclose(p.probs, [0.6, 0.4])
    assert "fell back to prior" in caplog.text
    assert m.posterior("bank", []).fell_back_to_prior


def test_word_not_in_vocabulary():
    m = toy_model()
    with pytest.raises(UnknownWordError, match="not in the multi-sense vocabulary"):
        m.posterior("nope", ["river"])
    assert issubclass(UnknownWordError, VocabularyError) and issubclass(UnknownWordError, ReplearnInputError)
    with pytest.raises(UnknownWordError):
        m.sense_neighbours("nope")


@pytest.mark.parametrize("bad", [0, -1])
def test_max_senses_below_one(bad):
    with pytest.raises(SenseConfigError, match="max_senses"):
        MultiSenseConfig(max_senses=bad)
    with pytest.raises(SenseConfigError):
        senses_per_word(np.array([10]), bad, 5, 10.0)
    assert issubclass(SenseConfigError, ReplearnInputError)


def test_other_bad_config_values():
    with pytest.raises(SenseConfigError, match="prune_threshold"):
        MultiSenseConfig(prune_threshold=1.5)
    with pytest.raises(SenseConfigError, match="estep"):
        MultiSenseConfig(estep="hard")


def test_senses_grow_with_log_count():
    k = senses_per_word(np.array([10, 199, 200, 1999, 2000, 10**6]), 5, 200, 10.0)
    assert k.tolist() == [1, 1, 2, 2, 3, 5]
    assert senses_per_word(np.array([10**6]), 1, 200, 10.0).tolist() == [1]
    assert sense_offsets(k).tolist() == [0, 1, 2, 4, 6, 9, 14]


def test_prune_keeps_best_sense_and_reports():
    prior = np.array([0.97, 0.01, 0.02, 1.0, 0.3, 0.3, 0.4])
    start = np.array([0, 3, 4, 7])
    keep, new_start, pruned = prune_senses(prior, start, 0.05, epoch=2)
    assert keep.tolist() == [0, 3, 4, 5, 6]
    assert new_start.tolist() == [0, 1, 2, 5]
    assert [(p.word, p.sense, p.epoch) for p in pruned] == [(0, 1, 2), (0, 2, 2)]
    keep, _, _ = prune_senses(np.array([0.5, 0.5]), np.array([0, 2]), 0.9)
    assert len(keep) == 1  # all below the threshold: the most probable one stays


def test_average_vectors_export_save_load(tmp_path):
    m = toy_model()
    np.testing.assert_allclose(m.average_vectors()[0], 0.6 * np.array([2, 0]) + 0.4 * np.array([0, 2]))
    rows = m.export_rows()
    assert rows["key"] == ["bank", "bank", "river", "money", "the"]
    assert rows["sense"].tolist() == [0, 1, 0, 0, 0] and rows["vector"].shape == (5, 2)
    np.testing.assert_allclose(rows["prior"], [0.6, 0.4, 1, 1, 1])
    m2 = MultiSenseVectors.load(m.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(m2.vectors, m.vectors)
    assert m2.config == m.config and m2.words == m.words


def test_sense_neighbours_and_maxsim():
    m = toy_model()
    nb = m.sense_neighbours("bank", topn=1)
    assert nb[0][0][0] == "river" and nb[1][0][0] == "money"
    assert m.sense_neighbours("bank", topn=1, against="context")[0][0][0] == "river"
    assert maxsim(m, "bank", "money") == pytest.approx(float(np.cos(np.arctan2(1, 0.1) - np.pi / 2)), abs=1e-6)
    with pytest.raises(ValueError):
        m.sense_neighbours("bank", against="nothing")


def test_choose_pairs_rule_and_split():
    words = ["the", "and"] + [f"w{i}" for i in range(5)] + ["alpha", "beta", "of", "gamma", "delta", "x1yz", "epsilon"]
    assert choose_pairs(words, n_pairs=5, rank_lo=0, rank_hi=100, min_len=4) == [("alpha", "beta"), ("gamma", "delta")]
    # defaults: ranks 500..5000, >= 5 letters, scikit-learn stop words excluded too
    band = [f"w{i}" for i in range(500)] + ["whether", "sometimes", "river", "money", "honey", "dog", "bread", "stone"]
    assert choose_pairs(band, n_pairs=3) == [("river", "money"), ("honey", "bread")]
    with pytest.raises(ReplearnInputError):
        choose_pairs(words, n_pairs=0)
    held = hash_split(np.arange(10000), 0.1, 0)
    assert 0.08 < held.mean() < 0.12
    np.testing.assert_array_equal(held, hash_split(np.arange(10000), 0.1, 0))


def test_estep_window_must_be_non_negative():
    assert MultiSenseConfig(estep_window=10).estep_window == 10
    with pytest.raises(SenseConfigError):
        MultiSenseConfig(estep_window=-1)
