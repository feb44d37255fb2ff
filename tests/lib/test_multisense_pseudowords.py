"""Pseudo-word pair rule (unrelatedness filter), occurrence contexts and posteriors, clustering init of senses."""

from __future__ import annotations

import json

import numpy as np
import pytest

from replearn.lib.errors import ReplearnInputError
from replearn.lib.multisense.cluster import cluster_directions, context_features, spherical_kmeans
from replearn.lib.multisense.config import MultiSenseConfig, SenseConfigError
from replearn.lib.multisense.pseudowords import Occurrences, choose_pairs, occurrence_log_posterior
from replearn.lib.multisense.trainer import cluster_senses
from replearn.lib.word2vec.corpus import IDS_FILE, META_FILE, OFFSETS_FILE, EncodedCorpus


def toy_corpus(tmp_path, n_sent=200, seed=0):
    """Word 0 occurs in sentences of 7 words, with words 1-4 or with words 5-8 (as in test_multisense_kernel)."""
    rng = np.random.default_rng(seed)
    ids, offsets = [], [0]
    for _ in range(n_sent):
        ctx = rng.integers(1, 5, size=6) + 4 * rng.integers(2)
        ids += list(ctx[:3]) + [0] + list(ctx[3:])
        offsets.append(len(ids))
    path = tmp_path / "enc"
    path.mkdir(parents=True)
    np.asarray(ids, np.int32).tofile(path / IDS_FILE)
    np.asarray(offsets, np.int64).tofile(path / OFFSETS_FILE)
    (path / META_FILE).write_text(json.dumps({"n_tokens": len(ids), "n_sentences": n_sent, "raw_tokens": len(ids),
                                              "vocab_size": 9}))
    return EncodedCorpus.open(path), np.bincount(ids, minlength=9), None


def test_choose_pairs_skips_related_partners_and_excluded_suffixes():
    words = ["river", "water", "money", "slowly", "loaned", "stone", "honey"]
    # river ~ water (cos 1), money ~ honey; all else orthogonal
    vec = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1],
                    [0, 1, 0, 0]], dtype=float)
    kw = dict(rank_lo=0, rank_hi=100, min_len=5)
    # without vectors: neighbours in rank after dropping -ly / -ed words
    assert choose_pairs(words, n_pairs=5, **kw) == [("river", "water"), ("money", "stone")]
    # with vectors: river's first unrelated partner is money; water then pairs with stone; honey is left single
    assert choose_pairs(words, n_pairs=5, vectors=vec, **kw) == [("river", "money"), ("water", "stone")]
    # partner_window 1: river may only try water (related) and stays single
    assert choose_pairs(words, n_pairs=5, vectors=vec, partner_window=1, **kw) == [("water", "money"),
                                                                                  ("stone", "honey")]
    assert choose_pairs(words, n_pairs=1, vectors=vec, **kw) == [("river", "money")]
    with pytest.raises(ReplearnInputError):
        choose_pairs(words, vectors=vec[:3], **kw)
    with pytest.raises(ReplearnInputError):
        choose_pairs(["river", "water"], vectors=vec[:2], **kw)  # the only pair is related


def test_occurrence_contexts_and_posterior_by_hand():
    # store of two sentences: [5 0 1 2] [3 0 -1]; occurrences at positions 1 and 5
    occ = Occurrences(pair=np.array([0, 0]), label=np.array([0, 1]), pos=np.array([1, 5]), start=np.array([0, 4]),
                      end=np.array([4, 7]), tokens=np.array([5, 0, 1, 2, 3, 0, -1]))
    np.testing.assert_array_equal(occ.window(2), [[-1, 5, 1, 2], [-1, 3, -1, -1]])
    rng = np.random.default_rng(0)
    table = rng.normal(size=(2, 6))
    lp = np.log([0.3, 0.7])
    got = occurrence_log_posterior(lp, table, occ, np.array([0, 1]), "window", 1)
    np.testing.assert_allclose(got, [lp + table[:, 5] + table[:, 1], lp + table[:, 3]])
    got = occurrence_log_posterior(lp, table, occ, np.array([0, 1]), "sentence")
    np.testing.assert_allclose(got, [lp + table[:, [5, 1, 2]].sum(1), lp + table[:, 3]])
    w = np.arange(6) / 10
    got = occurrence_log_posterior(lp, table, occ, np.array([1, 0]), "sentence", weights=w)
    np.testing.assert_allclose(got, [lp + 0.3 * table[:, 3], lp + table[:, [5, 1, 2]] @ w[[5, 1, 2]]])
    with pytest.raises(ReplearnInputError):
        occurrence_log_posterior(lp, table, occ, np.array([0]), "document")


def test_spherical_kmeans_finds_two_blobs():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(40, 5)) * 0.1 + np.array([1, 0, 0, 0, 0])
    b = rng.normal(size=(30, 5)) * 0.1 + np.array([0, 1, 0, 0, 0])
    x = np.concatenate([a, b])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    lab = spherical_kmeans(x, 2)
    assert len(set(lab[:40])) == 1 and len(set(lab[40:])) == 1 and lab[0] != lab[-1]


def test_clustering_init_separates_the_contexts_of_a_word(tmp_path):
    """Toy corpus: word 0 occurs with words 1-4 or with words 5-8; u(1..4) and u(5..8) point different ways."""
    corpus, counts, _ = toy_corpus(tmp_path, n_sent=200)
    D = 6
    rng = np.random.default_rng(2)
    syn1 = rng.normal(size=(9, D)).astype(np.float32) * 0.05
    syn1[1:5, 0] += 1.0
    syn1[5:9, 1] += 1.0
    words, feats = context_features(corpus, syn1, None, np.arange(9) == 0, max_occurrences=1000, width=3, seed=0)
    assert (words == 0).all() and len(words) == 200
    d = cluster_directions(words, feats, np.array([2] + [1] * 8))[0]
    assert d.shape == (2, D) and np.allclose(np.linalg.norm(d, axis=1), 1)
    # one direction prefers the words 1-4, the other the words 5-8
    s = d @ syn1.T  # (2, 9)
    pref = s[:, 1:5].mean(1) - s[:, 5:9].mean(1)
    assert pref.max() > 0.5 and pref.min() < -0.5
    syn0 = syn1[::-1].copy() + 1.0  # input vectors: word 0 common to both, 1-4 and 5-8 two directions
    syn0[0] = 1.0
    counts = np.where(np.arange(9) == 0, counts, 50)  # only word 0 gets 2 senses
    keep = np.full(9, 0.5)
    for features in ("input", "context"):
        cfg = MultiSenseConfig(dim=D, max_senses=2, sense_min_count=100, init_noise=0.5, cluster_window=3,
                               cluster_features=features)
        sv, start = cluster_senses(syn0, syn1, corpus, counts, cfg, keep)
        assert start[1] - start[0] == 2 and len(sv) == start[-1]
        f = sv[:2] @ syn1.T
        assert np.ptp(f[:, 1:5].mean(1) - f[:, 5:9].mean(1)) > 0.5, features
        np.testing.assert_array_equal(sv[start[1]:], syn0[1:])  # single-sense words keep their vector


def test_cluster_config_checks():
    assert MultiSenseConfig().sense_init == "cluster"
    with pytest.raises(SenseConfigError):
        MultiSenseConfig(sense_init="kmeans")
    with pytest.raises(SenseConfigError):
        MultiSenseConfig(cluster_window=0)
    with pytest.raises(SenseConfigError):
        MultiSenseConfig(cluster_features="output")
