"""Multi-sense kernel: one compiled update == the numpy reference; training on a toy corpus; resume."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.lib.multisense.config import MultiSenseConfig
from replearn.lib.multisense.kernel import window_update
from replearn.lib.multisense.objective import log_sigmoid, window_loss_and_grad
from replearn.lib.multisense.trainer import train_multisense
from replearn.lib.text.vocab import keep_probability, noise_distribution
from replearn.lib.word2vec.corpus import IDS_FILE, META_FILE, OFFSETS_FILE, EncodedCorpus


def reference_step(sv, syn1, s0, K, log_prior, targets, labels, alpha, estep_negatives, weights=None):
    """Plain numpy: responsibilities, then one SGD step with the posterior-weighted gradient."""
    v = sv[s0:s0 + K].astype(np.float64)
    u = syn1[targets].astype(np.float64)
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, np.float64)
    nll, r, gv, gu = window_loss_and_grad(v, log_prior[s0:s0 + K], u, labels, w)
    if not estep_negatives:  # responsibilities from the window words only; the gradient keeps every target
        pos = labels > 0.5
        a = log_prior[s0:s0 + K] + log_sigmoid(v @ u[pos].T).sum(axis=1)
        r = np.exp(a - a.max())
        r /= r.sum()
        sig = 1 / (1 + np.exp(-(v @ u.T)))
        e = (labels[None, :] - sig) * r[:, None] * w[None, :]
        gv, gu = -(e @ u), -(e.T @ v)
        nll = -(a.max() + np.log(np.exp(a - a.max()).sum()))
    sv2, syn12 = sv.astype(np.float64), syn1.astype(np.float64)
    sv2[s0:s0 + K] -= alpha * gv
    syn12[targets] -= alpha * gu  # targets distinct
    return nll, r, sv2, syn12


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("estep_negatives", [True, False])
def test_kernel_update_equals_reference(estep_negatives, shared):
    """Pair kernel: every term weighs 1. Shared kernel: the 2 window words share the noise words, each weighed 2."""
    rng = np.random.default_rng(3)
    V, D, K = 9, 6, 3
    sv = rng.normal(scale=0.4, size=(V + 2, D)).astype(np.float32)
    syn1 = rng.normal(scale=0.4, size=(V, D)).astype(np.float32)
    s0 = 4
    log_prior = np.log(np.full(V + 2, 1.0 / K))
    log_prior[s0:s0 + K] = np.log([0.5, 0.3, 0.2])
    targets = np.array([1, 5, 7, 2, 0, 8], dtype=np.int64)
    labels = np.array([1, 0, 0, 1, 0, 0], dtype=np.float32)
    counts = np.zeros(V + 2)
    wts = np.where(labels > 0.5, 1.0, 2.0 if shared else 1.0).astype(np.float32)
    nll_ref, r_ref, sv_ref, syn1_ref = reference_step(sv, syn1, s0, K, log_prior, targets,
                                                      labels.astype(np.float64), 0.05, estep_negatives, wts)
    f = np.empty((K, 6), np.float32)
    r = np.empty(K)
    nll = window_update(sv, syn1, s0, K, log_prior, counts, targets, labels, 6, 0.05, f, r,
                        np.empty((K, D), np.float32), np.empty(D, np.float32), -1.0, 1 if estep_negatives else 0,
                        np.zeros(V + 2), np.zeros(1, np.int64), 0, 1, wts)
    assert nll == pytest.approx(nll_ref, rel=1e-5)
    np.testing.assert_allclose(r, r_ref, rtol=1e-5)
    np.testing.assert_allclose(counts[s0:s0 + K], r_ref, rtol=1e-5)
    np.testing.assert_allclose(sv, sv_ref, atol=2e-6)
    np.testing.assert_allclose(syn1, syn1_ref, atol=2e-6)


def test_sampled_estep_moves_one_sense():
    rng = np.random.default_rng(4)
    sv = rng.normal(size=(3, 4)).astype(np.float32)
    syn1 = rng.normal(size=(4, 4)).astype(np.float32)
    before = sv.copy()
    K = 3
    window_update(sv, syn1, 0, K, np.log(np.full(3, 1 / 3)), np.zeros(3), np.array([0, 1, 2, 3]),
                  np.array([1, 0, 1, 0], np.float32), 4, 0.1, np.empty((K, 4), np.float32), np.empty(K),
                  np.empty((K, 4), np.float32), np.empty(4, np.float32), 0.0, 0, np.zeros(3), np.zeros(1, np.int64), 0, 1,
                  np.ones(4, np.float32))
    moved = np.abs(sv - before).sum(axis=1) > 0
    assert moved.tolist() == [True, False, False]  # pick = 0.0 -> the first sense


def write_corpus(path, ids, offsets, V):
    path.mkdir(parents=True)
    np.asarray(ids, np.int32).tofile(path / IDS_FILE)
    np.asarray(offsets, np.int64).tofile(path / OFFSETS_FILE)
    import json

    (path / META_FILE).write_text(json.dumps({"n_tokens": len(ids), "n_sentences": len(offsets) - 1,
                                              "raw_tokens": len(ids), "vocab_size": V}))
    return EncodedCorpus.open(path)


def toy_corpus(tmp_path, n_sent=300, seed=0):
    """Word 0 ('x') occurs in two kinds of sentences: with words 1-4 or with words 5-8."""
    rng = np.random.default_rng(seed)
    ids, offsets = [], [0]
    for _ in range(n_sent):
        group = rng.integers(2)
        ctx = rng.integers(1, 5, size=6) + 4 * group
        sent = list(ctx[:3]) + [0] + list(ctx[3:])
        ids += sent
        offsets.append(len(ids))
    ids = np.array(ids)
    counts = np.bincount(ids, minlength=9)
    order = np.argsort(-counts, kind="stable")  # ids must follow count order for a Vocabulary; keep raw ids here
    return write_corpus(tmp_path / "enc", ids, offsets, 9), counts, order


@pytest.mark.slow
def test_training_toy_splits_two_senses(tmp_path):
    corpus, counts, _ = toy_corpus(tmp_path)
    cfg = MultiSenseConfig(dim=16, window=3, negative=3, sample=0, epochs=6, warmup_epochs=1, alpha=0.05,
                           max_senses=2, sense_min_count=100, threads=1, prune_threshold=0.05, chunk_tokens=1000)
    res = train_multisense(corpus, counts, cfg, keep_prob=keep_probability(counts, 0), noise_probs=noise_distribution(counts))
    m = res.to_vectors([f"w{i}" for i in range(9)], counts, noise_distribution(counts), cfg)
    assert m.n_senses("w0") == 2
    p1 = m.posterior("w0", ["w1", "w2", "w3"]).probs
    p2 = m.posterior("w0", ["w5", "w6", "w7"]).probs
    assert p1.argmax() != p2.argmax() and p1.max() > 0.9 and p2.max() > 0.9
    assert m.sense_prior("w0").min() > 0.3
    assert np.isfinite(res.steps[-1].loss)


def test_single_thread_is_deterministic_and_resume_matches(tmp_path):
    corpus, counts, _ = toy_corpus(tmp_path, n_sent=80)
    cfg = MultiSenseConfig(dim=8, window=2, negative=2, sample=0, epochs=3, max_senses=2, sense_min_count=20,
                           threads=1, chunk_tokens=200)
    kw = dict(keep_prob=keep_probability(counts, 0), noise_probs=noise_distribution(counts))
    a = train_multisense(corpus, counts, cfg, **kw)
    b = train_multisense(corpus, counts, cfg, checkpoint_dir=tmp_path / "ck", **kw)
    np.testing.assert_array_equal(a.sv, b.sv)
    # drop the last checkpoint: resuming from epoch 2 gives the same vectors
    (tmp_path / "ck" / "epoch-0003.npz").unlink()
    c = train_multisense(corpus, counts, cfg, checkpoint_dir=tmp_path / "ck", **kw)
    assert c.resumed_from_epoch == 2
    np.testing.assert_array_equal(a.sv, c.sv)
    np.testing.assert_array_equal(a.prior, c.prior)


def test_estep_window_evidence_sets_responsibilities_and_dynamic_window_gets_the_step():
    """With n_evid > 0 the E-step reads the evidence words; the M-step still updates the targets only."""
    rng = np.random.default_rng(5)
    V, D, K = 8, 5, 2
    sv = rng.normal(scale=0.5, size=(K, D)).astype(np.float32)
    syn1 = rng.normal(scale=0.5, size=(V, D)).astype(np.float32)
    log_prior = np.log([0.6, 0.4])
    targets = np.array([1, 4, 2], dtype=np.int64)
    labels = np.array([1, 0, 1], dtype=np.float32)
    evid = np.array([1, 2, 6, 7], dtype=np.int64)
    v, u = sv.astype(np.float64), syn1.astype(np.float64)
    a = log_prior + log_sigmoid(v @ u[evid].T).sum(axis=1)  # noise_mode 0: window evidence only
    r_ref = np.exp(a - a.max()) / np.exp(a - a.max()).sum()
    sig = 1 / (1 + np.exp(-(v @ u[targets].T)))
    e = (labels[None, :] - sig) * r_ref[:, None]
    sv_ref = v + 0.05 * (e @ u[targets])
    syn1_ref = u.copy()
    syn1_ref[targets] += 0.05 * (e.T @ v)
    r = np.empty(K)
    counts = np.zeros(K)
    window_update(sv, syn1, 0, K, log_prior, counts, targets, labels, 3, 0.05, np.empty((K, 3), np.float32), r,
                  np.empty((K, D), np.float32), np.empty(D, np.float32), -1.0, 0, np.zeros(K), evid, 4, 2,
                  np.ones(3, np.float32))
    np.testing.assert_allclose(r, r_ref, rtol=1e-5)
    np.testing.assert_allclose(sv, sv_ref, atol=2e-6)
    np.testing.assert_allclose(syn1, syn1_ref, atol=2e-6)
    untouched = np.setdiff1d(np.arange(V), targets)
    np.testing.assert_array_equal(syn1[untouched], u[untouched].astype(np.float32))


def test_after_sense_init_hook_is_called_once_and_its_rows_are_trained_on(tmp_path):
    corpus, counts, _ = toy_corpus(tmp_path, n_sent=80)
    cfg = MultiSenseConfig(dim=8, window=2, negative=2, sample=0, epochs=2, warmup_epochs=1, max_senses=2,
                           sense_min_count=20, threads=1, chunk_tokens=200)
    kw = dict(keep_prob=keep_probability(counts, 0), noise_probs=noise_distribution(counts))
    calls = []

    def hook(sv, start, syn0, syn1):
        calls.append((sv.shape, start.copy(), syn0.shape, syn1.shape))
        sv[start[0]:start[1]] = 0.0  # word 0's senses: overwritten here, trained from zero afterwards

    plain = train_multisense(corpus, counts, cfg, **kw)
    hooked = train_multisense(corpus, counts, cfg, after_sense_init=hook, **kw)
    assert len(calls) == 1
    (sv_shape, start, syn0_shape, syn1_shape), = calls
    assert sv_shape == (start[-1], 8) and syn0_shape == syn1_shape == (9, 8) and start[1] - start[0] == 2
    assert not np.array_equal(plain.sv[:2], hooked.sv[:2])


@pytest.mark.slow
@pytest.mark.parametrize("warmup", [1, 0])
def test_stick_breaking_prior_splits_two_senses_with_the_most_used_sense_first(tmp_path, warmup):
    """With or without the skip-gram warm-up, EM starts from even counts: the second stick is not starved."""
    corpus, counts, _ = toy_corpus(tmp_path)
    cfg = MultiSenseConfig(dim=16, window=3, negative=3, sample=0, epochs=6, warmup_epochs=warmup, alpha=0.05,
                           max_senses=2, sense_min_count=100, threads=1, prune_threshold=0.05, chunk_tokens=1000,
                           prior="stick_breaking", dp_alpha=0.1)
    res = train_multisense(corpus, counts, cfg, keep_prob=keep_probability(counts, 0), noise_probs=noise_distribution(counts))
    m = res.to_vectors([f"w{i}" for i in range(9)], counts, noise_distribution(counts), cfg)
    p1 = m.posterior("w0", ["w1", "w2", "w3"]).probs
    p2 = m.posterior("w0", ["w5", "w6", "w7"]).probs
    assert p1.argmax() != p2.argmax() and p1.max() > 0.9 and p2.max() > 0.9
    prior = m.sense_prior("w0")
    assert prior[0] >= prior[1] > 0.3  # senses sorted by use, both kept


@pytest.mark.slow
@pytest.mark.parametrize("share", [3, 50])
def test_shared_noise_kernel_splits_two_senses(tmp_path, share):
    corpus, counts, _ = toy_corpus(tmp_path)
    cfg = MultiSenseConfig(dim=16, window=3, negative=3, sample=0, epochs=6, warmup_epochs=1, alpha=0.05,
                           max_senses=2, sense_min_count=100, threads=1, prune_threshold=0.05, chunk_tokens=1000,
                           kernel="shared", noise_share=share)
    res = train_multisense(corpus, counts, cfg, keep_prob=keep_probability(counts, 0), noise_probs=noise_distribution(counts))
    m = res.to_vectors([f"w{i}" for i in range(9)], counts, noise_distribution(counts), cfg)
    p1 = m.posterior("w0", ["w1", "w2", "w3"]).probs
    p2 = m.posterior("w0", ["w5", "w6", "w7"]).probs
    assert p1.argmax() != p2.argmax() and p1.max() > 0.9 and p2.max() > 0.9
    # the other words' vectors learn their groups: w1's neighbours are w2..w4, not w5..w8
    near = [w for w, _ in m.word_vectors().most_similar("w1", topn=3)]
    assert set(near) <= {"w0", "w2", "w3", "w4"}
