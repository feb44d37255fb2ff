"""Skip-gram: SGNS kernel, pair sampling, training loop, resume, full softmax — against plain references."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from replearn.lib.word2vec.config import Word2VecConfig
from replearn.lib.word2vec.corpus import EncodedCorpus, SentenceGrouper, encode_corpus, group_sentences
from replearn.lib.word2vec.hogbatch import sgns_shared_update, train_block_shared
from replearn.lib.word2vec.sgns import _draw_noise, alias_table, sgns_pair_update, split_jobs, train_chunk
from replearn.lib.word2vec.softmax import skipgram_pairs, softmax_loss, train_softmax
from replearn.lib.word2vec.trainer import KERNELS, train_sgns

MASK64 = (1 << 64) - 1


def lcg(state: int) -> int:
    return (state * 25214903917 + 11) & MASK64


def uniform(state: int) -> float:
    return ((state >> 16) & 0xFFFFFF) / 16777216.0


def reference_pairs(ids, bounds, window, keep_prob, seed):
    """Plain-Python skip-gram pair generator with the same random stream as the kernel."""
    state = int(seed)
    out = []
    for s in range(len(bounds) - 1):
        kept = []
        for w in ids[bounds[s] : bounds[s + 1]]:
            state = lcg(state)
            if keep_prob[w] < 1.0 and keep_prob[w] < uniform(state):
                continue
            kept.append(int(w))
        for i, centre in enumerate(kept):
            state = lcg(state)
            b = (state >> 16) % window
            for j in range(max(0, i - window + b), min(len(kept), i + window + 1 - b)):
                if j != i:
                    out.append((centre, kept[j]))
    return out


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_one_sgns_step_equals_hand_computation():
    rng = np.random.default_rng(0)
    V, D = 7, 5
    syn0 = rng.normal(size=(V, D)).astype(np.float32)
    syn1 = rng.normal(size=(V, D)).astype(np.float32)
    centre, targets, alpha = 2, np.array([4, 1, 6, 1], dtype=np.int64), 0.1
    v = syn0[centre].astype(np.float64)
    u = syn1.astype(np.float64).copy()
    grad_v = np.zeros(D)
    loss = 0.0
    for j, t in enumerate(targets):  # word2vec.c order: u updated per target, v once at the end
        label = 1.0 if j == 0 else 0.0
        s = sigmoid(u[t] @ v)
        loss += -np.log(s) if label else -np.log(1 - s)
        g = alpha * (label - s)
        grad_v += g * u[t]
        u[t] += g * v
    expect_v = v + grad_v
    got = sgns_pair_update(syn0, syn1, centre, targets, len(targets), alpha, np.empty(D, np.float32))
    np.testing.assert_allclose(got, loss, rtol=1e-5)
    np.testing.assert_allclose(syn0[centre], expect_v, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(syn1, u, rtol=1e-5, atol=1e-6)


def test_sgns_gradient_matches_autograd():
    """The update direction equals -alpha * dL/dparams of the SGNS loss (Mikolov et al. 2013, eq. 4)."""
    rng = np.random.default_rng(1)
    V, D = 6, 4
    syn0 = rng.normal(size=(V, D)).astype(np.float32)
    syn1 = rng.normal(size=(V, D)).astype(np.float32)
    centre, targets, alpha = 0, np.array([3, 5], dtype=np.int64), 1e-3  # distinct targets: exact gradient
    v = torch.tensor(syn0[centre], dtype=torch.float64, requires_grad=True)
    u = torch.tensor(syn1, dtype=torch.float64, requires_grad=True)
    loss = -torch.nn.functional.logsigmoid(u[3] @ v) - torch.nn.functional.logsigmoid(-(u[5] @ v))
    loss.backward()
    before0, before1 = syn0.copy(), syn1.copy()
    sgns_pair_update(syn0, syn1, centre, targets, 2, alpha, np.empty(D, np.float32))
    np.testing.assert_allclose(syn0[centre] - before0[centre], -alpha * v.grad.numpy(), rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(syn1 - before1, -alpha * u.grad.numpy(), rtol=1e-4, atol=1e-8)


def shared_step_reference(syn0, syn1, inputs, outputs, alpha):
    """HogBatch step by hand (Ji et al. 2016), float64: every gradient at the pre-step rows, increments summed."""
    X, Y = syn0[inputs].astype(np.float64), syn1[outputs].astype(np.float64)
    s0, s1, loss = syn0.astype(np.float64), syn1.astype(np.float64), 0.0
    for a, c in enumerate(inputs):
        for b, t in enumerate(outputs):
            label = 1.0 if b == 0 else 0.0
            s = sigmoid(X[a] @ Y[b])
            loss += -np.log(s) if label else -np.log(1 - s)
            g = alpha * (label - s)
            s0[c] += g * Y[b]
            s1[t] += g * X[a]
    return s0, s1, loss


def test_one_shared_negatives_step_equals_hand_computation():
    rng = np.random.default_rng(10)
    V, D = 9, 5
    syn0 = rng.normal(size=(V, D)).astype(np.float32)
    syn1 = rng.normal(size=(V, D)).astype(np.float32)
    inputs = np.array([3, 1, 3, 7], dtype=np.int64)  # a context word twice: both increments land
    outputs = np.array([2, 5, 1, 5], dtype=np.int64)  # centre 2; noise 5 drawn twice; noise 1 is also an input
    s0, s1, loss = shared_step_reference(syn0, syn1, inputs, outputs, 0.1)
    x, y, g = np.empty((10, D), np.float32), np.empty((6, D), np.float32), np.empty((10, 6), np.float32)
    got = sgns_shared_update(syn0, syn1, inputs, 4, outputs, 4, 0.1, x, y, g)
    np.testing.assert_allclose(got, loss, rtol=1e-5)
    np.testing.assert_allclose(syn0, s0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(syn1, s1, rtol=1e-5, atol=1e-6)


def test_shared_negatives_gradient_matches_autograd():
    """The step is -alpha * dL/dparams of the summed loss of the m pairs that share the noise words."""
    rng = np.random.default_rng(11)
    V, D = 8, 4
    syn0 = rng.normal(size=(V, D)).astype(np.float32)
    syn1 = rng.normal(size=(V, D)).astype(np.float32)
    inputs, outputs, alpha = np.array([0, 4, 6]), np.array([1, 2, 5]), 1e-3
    v = torch.tensor(syn0, dtype=torch.float64, requires_grad=True)
    u = torch.tensor(syn1, dtype=torch.float64, requires_grad=True)
    f = v[inputs] @ u[outputs].T
    loss = -torch.nn.functional.logsigmoid(f[:, 0]).sum() - torch.nn.functional.logsigmoid(-f[:, 1:]).sum()
    loss.backward()
    before0, before1 = syn0.copy(), syn1.copy()
    x, y, g = np.empty((3, D), np.float32), np.empty((3, D), np.float32), np.empty((3, 3), np.float32)
    sgns_shared_update(syn0, syn1, inputs, 3, outputs, 3, alpha, x, y, g)
    # float32 rows of size ~1 hold the ~1e-3 increments to about 1e-7
    np.testing.assert_allclose(syn0 - before0, -alpha * v.grad.numpy(), rtol=1e-3, atol=5e-7)
    np.testing.assert_allclose(syn1 - before1, -alpha * u.grad.numpy(), rtol=1e-3, atol=5e-7)


def test_shared_negatives_block_equals_plain_loop():
    """A whole block of the shared kernel against a plain-Python loop with the same random stream."""
    rng = np.random.default_rng(12)
    V, D, window, negative = 12, 6, 3, 4
    ids = rng.integers(0, V, size=120).astype(np.int32)
    bounds = np.array([0, 1, 50, 120], dtype=np.int64)
    keep = rng.uniform(0.4, 1.0, size=V)
    keep[:4] = 1.0
    alias_prob, alias_idx = alias_table(rng.uniform(0.1, 1.0, size=V))
    syn0 = rng.normal(scale=0.1, size=(V, D)).astype(np.float32)
    syn1 = rng.normal(scale=0.1, size=(V, D)).astype(np.float32)
    s0, s1 = syn0.astype(np.float64), syn1.astype(np.float64)
    alpha0, alpha1, progress0, scale, seed = 0.05, 0.001, 0.2, 1 / 400, 99
    state, loss, pairs, words = seed, 0.0, 0, 0
    for s in range(3):
        kept = []
        for w in ids[bounds[s]:bounds[s + 1]]:
            state = lcg(state)
            if not (keep[w] < 1.0 and keep[w] < uniform(state)):
                kept.append(int(w))
        words += int(bounds[s + 1] - bounds[s])
        alpha = max(alpha0 - (alpha0 - alpha1) * min(progress0 + words * scale, 1.0), alpha1)
        for i, w in enumerate(kept):
            state = lcg(state)
            b = (state >> 16) % window
            inputs = [kept[j] for j in range(max(0, i - window + b), min(len(kept), i + window + 1 - b)) if j != i]
            if not inputs:
                continue
            outputs = [w]
            for _ in range(negative):
                state = lcg(state)
                t = (state >> 16) % V
                state = lcg(state)
                t = t if uniform(state) < alias_prob[t] else int(alias_idx[t])
                if t != w:
                    outputs.append(t)
            s0, s1, step_loss = shared_step_reference(s0, s1, np.array(inputs), np.array(outputs), alpha)
            loss, pairs = loss + step_loss, pairs + len(inputs)
    got = train_block_shared(syn0, syn1, ids, bounds, 0, 3, keep, alias_prob, alias_idx, window, negative,
                             alpha0, alpha1, progress0, scale, np.uint64(seed))
    assert (got[1], got[2]) == (pairs, words)
    np.testing.assert_allclose(got[0], loss, rtol=1e-4)
    np.testing.assert_allclose(syn0, s0, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(syn1, s1, rtol=1e-4, atol=1e-5)


def test_pairs_equal_plain_loop_with_subsampling_and_dynamic_window():
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 20, size=300).astype(np.int32)
    bounds = np.array([0, 7, 100, 101, 300], dtype=np.int64)
    keep = rng.uniform(0.3, 1.0, size=20)
    keep[:5] = 1.0
    c, y = skipgram_pairs(ids, bounds, 4, keep, np.uint64(12345))
    assert list(zip(c.tolist(), y.tolist())) == reference_pairs(ids, bounds, 4, keep, 12345)


def test_subsampling_keep_rate_matches_keep_probability():
    ids = np.repeat(np.arange(3, dtype=np.int32), 40_000)
    rng = np.random.default_rng(3)
    rng.shuffle(ids)
    bounds = np.arange(0, len(ids) + 1, 10, dtype=np.int64)
    keep = np.array([0.2, 0.6, 1.0])
    c, _ = skipgram_pairs(ids, bounds, 1, keep, np.uint64(7))
    # window 1 + subsampling: count distinct kept centres via pairs is biased; use a window-free check instead
    kept_counts = np.zeros(3)
    state = 7
    for w in ids[:30_000]:
        state = lcg(state)
        if not (keep[w] < 1.0 and keep[w] < uniform(state)):
            kept_counts[w] += 1
    rates = kept_counts / np.bincount(ids[:30_000], minlength=3)
    np.testing.assert_allclose(rates, keep, atol=0.02)
    assert len(c) > 0


def test_noise_draws_follow_unigram_075():
    counts = np.array([1000, 300, 100, 10, 1, 0], dtype=np.float64)
    p = counts**0.75 / (counts**0.75).sum()
    prob, alias = alias_table(p)
    # the alias table represents p exactly: sum of acceptance mass plus aliased mass per word
    mass = prob.copy()
    np.add.at(mass, alias, 1.0 - prob)
    np.testing.assert_allclose(mass / len(p), p, atol=1e-12)
    draws = np.zeros(len(p))
    state = np.uint64(99)
    n = 200_000
    for _ in range(n):
        w, state = _draw_noise(prob, alias, state)
        draws[w] += 1
    np.testing.assert_allclose(draws / n, p, atol=0.005)
    assert draws[-1] == 0  # a zero-weight word is never drawn
    with pytest.raises(ValueError):
        alias_table(np.array([np.nan, 1.0]))


def test_split_jobs_keeps_whole_sentences():
    bounds = np.array([0, 5, 30, 31, 100, 104], dtype=np.int64)
    starts = split_jobs(bounds, 10)
    assert starts[0] == 0 and starts[-1] == 5 and np.all(np.diff(starts) > 0)
    np.testing.assert_array_equal(split_jobs(bounds, 1000), [0, 5])


def _tiny_corpus(tmp_path, n_docs=400, vocab=30, seed=0, doc_len=12):
    """Synthetic corpus with structure: words i and i+1 co-occur (pairs of 'synonyms')."""
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n_docs):
        base = int(rng.integers(0, vocab // 2)) * 2
        docs.append([f"w{base + int(rng.integers(0, 2))}" if rng.random() < 0.7 else f"w{int(rng.integers(0, vocab))}"
                     for _ in range(doc_len)])
    shard = tmp_path / "tokens.parquet"
    pq.write_table(pa.table({"tokens": docs}), shard)
    words = [f"w{i}" for i in range(vocab)]
    counts = np.array([sum(d.count(w) for d in docs) for w in words], dtype=np.int64)
    corpus = encode_corpus([shard], words, tmp_path / "enc", max_sentence_tokens=None)
    return corpus, words, counts


def _probs(counts, cfg):
    total = counts.sum()
    t = cfg.sample * total
    keep = np.minimum((np.sqrt(counts / t) + 1) * t / counts, 1.0) if cfg.sample else np.ones(len(counts))
    noise = counts**0.75
    return keep, noise / noise.sum()


@pytest.mark.parametrize("kernel", ["shared", "pair"])
def test_training_is_deterministic_with_one_thread_and_learns(tmp_path, kernel):
    corpus, words, counts = _tiny_corpus(tmp_path)
    cfg = Word2VecConfig(dim=16, epochs=10, threads=1, min_count=1, chunk_tokens=1000, alpha=0.05, sample=0,
                         kernel=kernel)
    keep, noise = _probs(counts, cfg)
    a = train_sgns(corpus, counts, cfg, keep_prob=keep, noise_probs=noise)
    b = train_sgns(corpus, counts, cfg, keep_prob=keep, noise_probs=noise)
    np.testing.assert_array_equal(a.syn0, b.syn0)
    np.testing.assert_array_equal(a.syn1, b.syn1)
    assert a.steps[-1].loss < a.steps[0].loss  # per-step mean loss falls
    assert all(np.isfinite(s.loss) and s.loss < 10 for s in a.steps)  # a mean per pair, never cumulative
    unit = a.syn0 / np.linalg.norm(a.syn0, axis=1, keepdims=True)
    sims = unit @ unit.T
    partner = [int(np.argsort(-sims[i])[1]) for i in range(0, 30, 2)]
    assert np.mean([p == i + 1 for p, i in zip(partner, range(0, 30, 2))]) > 0.8


@pytest.mark.parametrize("kernel", ["shared", "pair"])
def test_two_threads_give_same_quality_and_loss_scale(tmp_path, kernel):
    corpus, words, counts = _tiny_corpus(tmp_path, n_docs=800)
    cfg1 = Word2VecConfig(dim=16, epochs=2, threads=1, min_count=1, chunk_tokens=2000, alpha=0.05, kernel=kernel)
    cfg2 = Word2VecConfig(dim=16, epochs=2, threads=2, min_count=1, chunk_tokens=2000, alpha=0.05, kernel=kernel)
    keep, noise = _probs(counts, cfg1)
    r1 = train_sgns(corpus, counts, cfg1, keep_prob=keep, noise_probs=noise)
    r2 = train_sgns(corpus, counts, cfg2, keep_prob=keep, noise_probs=noise)
    assert len(r1.steps) == len(r2.steps)
    assert abs(np.mean([s.loss for s in r1.steps]) - np.mean([s.loss for s in r2.steps])) < 0.1
    assert r1.words == r2.words == corpus.n_tokens * 2


@pytest.mark.parametrize("kernel", ["shared", "pair"])
def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path, kernel):
    corpus, words, counts = _tiny_corpus(tmp_path)
    cfg = Word2VecConfig(dim=8, epochs=3, threads=1, min_count=1, chunk_tokens=1000, kernel=kernel)
    keep, noise = _probs(counts, cfg)
    full = train_sgns(corpus, counts, cfg, keep_prob=keep, noise_probs=noise, checkpoint_dir=tmp_path / "ck1")
    ck = tmp_path / "ck2"
    train_sgns(corpus, counts, cfg, keep_prob=keep, noise_probs=noise, checkpoint_dir=ck)
    (ck / "epoch-0003.npz").unlink()  # as if killed during epoch 3
    (ck / "epoch-0002.npz").unlink()
    resumed = train_sgns(corpus, counts, cfg, keep_prob=keep, noise_probs=noise, checkpoint_dir=ck)
    assert resumed.resumed_from_epoch == 1
    np.testing.assert_array_equal(full.syn0, resumed.syn0)
    np.testing.assert_array_equal(full.syn1, resumed.syn1)
    # a different config never resumes from these checkpoints
    other = Word2VecConfig(dim=8, epochs=3, threads=1, min_count=1, chunk_tokens=1000, window=2, kernel=kernel)
    assert train_sgns(corpus, counts, other, keep_prob=keep, noise_probs=noise, checkpoint_dir=ck).resumed_from_epoch == 0


def test_long_document_is_cut_into_sentences_not_truncated(tmp_path):
    words = [f"w{i}" for i in range(50)]
    doc = [words[i % 50] for i in range(20_000)]
    shard = tmp_path / "t.parquet"
    pq.write_table(pa.table({"tokens": [["w1", "w2"], doc, ["w3"]]}), shard)
    corpus = encode_corpus([shard], words, tmp_path / "enc", max_sentence_tokens=1000)
    assert corpus.n_tokens == 20_003
    offsets = corpus.offsets()
    # the long document is cut into sentences of 1,000 tokens (word2vec.c), every token kept
    assert list(np.diff(offsets)) == [2] + [1000] * 20 + [1]
    chunks = list(EncodedCorpus.open(tmp_path / "enc").iter_chunks(5000))
    assert sum(len(ids) for ids, _ in chunks) == 20_003
    counts = np.bincount(np.concatenate([c for c, _ in chunks]), minlength=50).astype(np.int64)
    cfg = Word2VecConfig(dim=8, epochs=1, threads=1, min_count=1, sample=0)
    keep, noise = _probs(counts, cfg)
    r = train_sgns(corpus, counts, cfg, keep_prob=keep, noise_probs=noise)
    assert r.words == 20_003


def test_group_sentences_equals_plain_loop():
    rng = np.random.default_rng(4)
    lengths = rng.integers(1, 40, size=500)
    lengths[[10, 200]] = 150
    bounds, cur, pos = [0], 0, 0
    for n in lengths:  # greedy reference: a document longer than the cap is cut into pieces of the cap
        for piece in [100] * (n // 100) + ([n % 100] if n % 100 else []):
            if cur and cur + piece > 100:
                bounds.append(pos)
                cur = 0
            cur += piece
            pos += piece
    bounds.append(pos)
    np.testing.assert_array_equal(group_sentences(lengths, 100), bounds)
    np.testing.assert_array_equal(group_sentences(lengths, None), np.concatenate([[0], np.cumsum(lengths)]))
    # streaming in uneven batches gives the same boundaries (flat memory for any corpus size)
    for cap in (100, None):
        g = SentenceGrouper(cap)
        parts = [g.add(lengths[a:b]) for a, b in ((0, 7), (7, 8), (8, 300), (300, 500))]
        np.testing.assert_array_equal(np.concatenate([[0], *parts, g.close()]), group_sentences(lengths, cap))


@pytest.mark.parametrize("kernel", ["shared", "pair"])
def test_train_chunk_reports_words_and_pairs(kernel):
    V, D = 10, 4
    syn0 = np.full((V, D), 0.01, np.float32)
    syn1 = np.zeros((V, D), np.float32)
    ids = np.arange(10, dtype=np.int32)
    bounds = np.array([0, 10], dtype=np.int64)
    loss, pairs, words = train_chunk(syn0, syn1, ids, bounds, keep_prob=np.ones(V), noise=alias_table(np.ones(V)),
                                     window=1, negative=2, alpha0=0.025, alpha1=0.025, progress0=0.0, total_words=10.0,
                                     seed=0, epoch=0, chunk=0, block=KERNELS[kernel])
    assert (pairs, words) == (18, 10)  # window 1: every inner word has 2 neighbours, the ends 1
    # zero context vectors: every target has sigma = 0.5, so loss ~ (1 + k) log 2 per pair (k <= 2 noise words)
    assert 1.0 * np.log(2) * pairs <= loss <= 3.0 * np.log(2) * pairs + 1e-6


def test_softmax_loss_equals_hand_log_softmax():
    g = torch.Generator().manual_seed(0)
    v, u = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    c, y = torch.tensor([0, 2, 5]), torch.tensor([1, 1, 4])
    expect = 0.0
    for ci, yi in zip(c.tolist(), y.tolist()):
        scores = [float(u[k] @ v[ci]) for k in range(6)]
        expect += -(scores[yi] - np.log(np.sum(np.exp(scores))))
    assert abs(float(softmax_loss(v, u, c, y)) - expect / 3) < 1e-5


def test_softmax_training_learns_and_refuses_big_vocab(tmp_path):
    corpus, words, counts = _tiny_corpus(tmp_path)
    cfg = Word2VecConfig(dim=16, epochs=4, threads=1, min_count=1, objective="softmax", softmax_batch=64,
                         chunk_tokens=2000, alpha=0.01, sample=0)
    keep, _ = _probs(counts, cfg)
    r = train_softmax(corpus, counts, cfg, keep_prob=keep)
    assert r.steps[-1].loss < r.steps[0].loss - 0.1
    assert r.steps[0].loss < np.log(len(words)) + 0.1  # starts near uniform: log V
    small = Word2VecConfig(objective="softmax", softmax_max_vocab=10)
    with pytest.raises(ValueError, match="--softmax-max-vocab 10: use --objective negative_sampling"):
        train_softmax(corpus, counts, small, keep_prob=keep)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="window"):
        Word2VecConfig(window=0)
    cfg = Word2VecConfig(dim=7)
    assert Word2VecConfig.from_dict(cfg.to_dict()) == cfg


def test_one_huge_line_is_cut_into_pieces_when_lines_are_not_joined():
    from replearn.lib.word2vec.corpus import LINE_CUT_TOKENS

    lengths = np.array([5, 2 * LINE_CUT_TOKENS + 7, 3])
    for cap in (None, 0):
        np.testing.assert_array_equal(np.diff(group_sentences(lengths, cap)),
                                      [5, LINE_CUT_TOKENS, LINE_CUT_TOKENS, 7, 3])


def test_zero_sentence_cap_means_one_line_one_sentence():
    from replearn.lib.word2vec.config import Word2VecConfig
    from replearn.lib.word2vec.corpus import group_sentences

    lengths = np.array([3, 1, 5, 2])
    np.testing.assert_array_equal(group_sentences(lengths, 0), [0, 3, 4, 9, 11])
    np.testing.assert_array_equal(group_sentences(lengths, 0), group_sentences(lengths, None))
    assert Word2VecConfig(max_sentence_tokens=0).max_sentence_tokens == 0  # accepted (the CLI and the form)


@pytest.mark.parametrize("kernel", ["shared", "pair"])
def test_a_diverging_learning_rate_stops_with_a_training_error(tmp_path, kernel):
    from replearn.lib.errors import TrainingError

    corpus, words, counts = _tiny_corpus(tmp_path)
    cfg = Word2VecConfig(dim=8, epochs=1, threads=1, min_count=1, alpha=1.0, sample=0, kernel=kernel, negative=20)
    keep, noise = _probs(counts, cfg)
    with pytest.raises(TrainingError, match="lower --alpha"):
        train_sgns(corpus, counts, cfg, keep_prob=keep, noise_probs=noise)
