"""Skip-gram with negative sampling (SGNS): word2vec.c's per-pair kernel ("pair") and the shared chunk driver.

The default kernel, shared negatives, is :mod:`replearn.lib.word2vec.hogbatch`;
both run under :func:`train_chunk` with the random streams and helpers below.

Model (Mikolov et al. 2013, "Distributed Representations of Words and Phrases",
eq. 4): for a centre word x with input vector v(x) (row of ``syn0``, shape
(V, D)) and a context word y with context vector u(y) (row of ``syn1``, shape
(V, D)), the loss of one positive pair with K noise words n_1..n_K drawn from
the unigram^0.75 distribution is

    L = -log sigma(<u(y), v(x)>) - sum_k log sigma(-<u(n_k), v(x)>)

and one SGD step with learning rate alpha is, for each target t in {y, n_k}
with label l_t (1 for y, 0 for noise) and g_t = alpha * (l_t - sigma(<u(t), v(x)>)):

    u(t) <- u(t) + g_t * v(x)            (in target order, as word2vec.c)
    v(x) <- v(x) + sum_t g_t * u_old(t)  (applied once, after all targets)

The corpus is processed in blocks of whole sentences; blocks of a chunk run in
parallel threads that update shared matrices without locks (Hogwild, Recht et
al. 2011), exactly as word2vec.c and gensim do. Every random draw (subsampling,
dynamic window, noise words) comes from a per-block linear congruential
generator seeded from (seed, epoch, chunk, block), so with one thread a run is
bit-for-bit reproducible and resuming from an epoch checkpoint gives the same
vectors as an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor

import numpy as np
from numba import njit

_LCG_MUL = np.uint64(25214903917)
_LCG_ADD = np.uint64(11)


@njit(inline="always")
def _next(state: np.uint64) -> np.uint64:
    return state * _LCG_MUL + _LCG_ADD


@njit(inline="always")
def _uniform(state: np.uint64) -> float:
    # 24 random bits -> [0, 1)
    return float((state >> np.uint64(16)) & np.uint64(0xFFFFFF)) / 16777216.0


@njit(inline="always")
def _draw_noise(alias_prob: np.ndarray, alias_idx: np.ndarray, state: np.uint64) -> tuple[np.int64, np.uint64]:
    """One noise word by Walker's alias method (Walker 1977; Vose 1991): O(1), exact distribution.

    Returns (word id, advanced generator state).
    """
    state = _next(state)
    i = np.int64((state >> np.uint64(16)) % np.uint64(alias_prob.shape[0]))
    state = _next(state)
    if _uniform(state) < alias_prob[i]:
        return i, state
    return alias_idx[i], state


@njit(inline="always")
def draw_noise_words(alias_prob, alias_idx, negative, exclude, out, state):
    """K = ``negative`` noise words into ``out[1:]``, skipping draws equal to ``exclude`` (word2vec.c).

    Returns (1 + number kept, generator state): ``out[:returned]`` are the targets when ``out[0]`` is the
    positive one.
    """
    m = 1
    for _ in range(negative):
        t, state = _draw_noise(alias_prob, alias_idx, state)
        if t == exclude:
            continue
        out[m] = t
        m += 1
    return m, state


@njit(inline="always")
def subsample(ids, start, end, keep_prob, kept, state):
    """Frequent-word subsampling of ids[start:end] into ``kept`` (word2vec.c).

    Word w is kept with probability keep_prob[w]; one draw per token.
    Returns (number kept, generator state).
    """
    n = 0
    for i in range(start, end):
        w = ids[i]
        state = _next(state)
        if keep_prob[w] < 1.0 and keep_prob[w] < _uniform(state):
            continue
        kept[n] = w
        n += 1
    return n, state


@njit(inline="always")
def window_span(i, n, window, state):
    """Dynamic window (word2vec.c): effective size window - b, b uniform in [0, window).

    Returns the context positions [lo, hi) around centre position i of a sentence of n words.
    """
    b = np.int64((state >> np.uint64(16)) % np.uint64(window))
    return max(0, i - window + b), min(n, i + window + 1 - b)


@njit(inline="always")
def longest_sentence(bounds, s_begin, s_end):
    """Most tokens in one of sentences ``s_begin..s_end-1`` (size of the per-job subsampling buffer)."""
    longest = 0
    for s in range(s_begin, s_end):
        longest = max(longest, bounds[s + 1] - bounds[s])
    return longest


@njit(inline="always")
def decayed_alpha(progress0, words, progress_scale, alpha0, alpha1):
    """word2vec.c's linear learning-rate decay from ``alpha0`` to ``alpha1`` by global training progress."""
    p = progress0 + words * progress_scale
    alpha = alpha0 - (alpha0 - alpha1) * min(p, 1.0)
    return alpha1 if alpha < alpha1 else alpha


@njit(fastmath=True, inline="always")
def sgns_pair_update(syn0, syn1, centre, targets, n_targets, alpha, neu1e):
    """One SGD step of SGNS for one (centre, context) pair; returns the pair's loss.

    Args:
        syn0: float32 (V, D) input vectors v, updated in place.
        syn1: float32 (V, D) context vectors u, updated in place.
        centre: row of the centre word x.
        targets: int64 (>= n_targets,) rows; ``targets[0]`` is the context word y
            (label 1), the rest noise words (label 0).
        n_targets: how many entries of ``targets`` to use (1 + K).
        alpha: learning rate.
        neu1e: float32 (D,) scratch buffer.

    Returns:
        The loss L of the pair before the update (nats), float.
    """
    # 2-D indexing, no row views: a view would take a reference on the shared matrix
    # (an atomic increment), and threads doing that millions of times contend for one cache line
    D = syn0.shape[1]
    for k in range(D):
        neu1e[k] = 0.0
    loss = 0.0
    for j in range(n_targets):
        t = targets[j]
        f = np.float32(0.0)
        for k in range(D):
            f += syn0[centre, k] * syn1[t, k]
        if f > 30.0:
            f = np.float32(30.0)
        elif f < -30.0:
            f = np.float32(-30.0)
        s = 1.0 / (1.0 + np.exp(-f))
        if j == 0:
            g = alpha * (1.0 - s)
            loss -= np.log(max(s, 1e-12))
        else:
            g = alpha * (0.0 - s)
            loss -= np.log(max(1.0 - s, 1e-12))
        g32 = np.float32(g)
        for k in range(D):
            neu1e[k] += g32 * syn1[t, k]
            syn1[t, k] += g32 * syn0[centre, k]
    for k in range(D):
        syn0[centre, k] += neu1e[k]
    return loss


@njit(fastmath=True, nogil=True)
def train_block_pair(syn0, syn1, ids, bounds, s_begin, s_end, keep_prob, alias_prob, alias_idx, window, negative,
                     alpha0, alpha1, progress0, progress_scale, seed):
    """Train on sentences [s_begin, s_end) of a chunk, one (centre, context) pair at a time.

    Returns:
        (loss_sum, n_pairs, n_words): summed pair losses (nats), positive pairs, tokens read.
    """
    D = syn0.shape[1]
    neu1e = np.empty(D, dtype=np.float32)
    targets = np.empty(negative + 1, dtype=np.int64)
    kept = np.empty(longest_sentence(bounds, s_begin, s_end), dtype=np.int32)
    state = np.uint64(seed)
    loss = 0.0
    pairs = 0
    words = 0
    alpha = alpha0
    for s in range(s_begin, s_end):
        n, state = subsample(ids, bounds[s], bounds[s + 1], keep_prob, kept, state)
        words += bounds[s + 1] - bounds[s]
        alpha = decayed_alpha(progress0, words, progress_scale, alpha0, alpha1)  # once per sentence
        for i in range(n):
            state = _next(state)
            lo, hi = window_span(i, n, window, state)
            centre = kept[i]
            for j in range(lo, hi):
                if j == i:
                    continue
                targets[0] = kept[j]
                m, state = draw_noise_words(alias_prob, alias_idx, negative, kept[j], targets, state)
                loss += sgns_pair_update(syn0, syn1, centre, targets, m, alpha, neu1e)
                pairs += 1
    return loss, pairs, words


@njit
def _build_alias(p):
    n = p.shape[0]
    prob = np.zeros(n, dtype=np.float64)
    alias = np.arange(n, dtype=np.int64)
    scaled = p * n
    small = np.empty(n, dtype=np.int64)
    large = np.empty(n, dtype=np.int64)
    ns = 0
    nl = 0
    for i in range(n):
        if scaled[i] < 1.0:
            small[ns] = i
            ns += 1
        else:
            large[nl] = i
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        s = small[ns]
        g = large[nl - 1]
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] = (scaled[g] + scaled[s]) - 1.0
        if scaled[g] < 1.0:
            nl -= 1
            small[ns] = g
            ns += 1
    for i in range(nl):
        prob[large[i]] = 1.0
    for i in range(ns):
        prob[small[i]] = 1.0
    return prob, alias


def alias_table(noise_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table for O(1) sampling of noise words.

    Args:
        noise_probs: (V,) non-negative weights (normalised here), e.g. unigram^0.75.

    Returns:
        (prob, alias): float64 (V,) acceptance probabilities in [0, 1] and int64 (V,)
        alias ids. Draw i uniform in [0, V), u uniform in [0, 1): i if u < prob[i] else alias[i].
    """
    p = np.asarray(noise_probs, dtype=np.float64)
    if p.ndim != 1 or len(p) == 0 or not np.isfinite(p).all() or (p < 0).any() or p.sum() <= 0:
        raise ValueError("noise_probs must be a non-empty 1-D array of finite non-negative weights with a positive sum")
    return _build_alias(p / p.sum())


def block_seeds(seed: int, epoch: int, chunk: int, n_blocks: int) -> np.ndarray:
    """uint64 (n_blocks,) seeds, a pure function of (seed, epoch, chunk, block)."""
    ss = np.random.SeedSequence([seed, epoch, chunk])
    return ss.generate_state(n_blocks, dtype=np.uint64)


def split_jobs(bounds: np.ndarray, job_tokens: int) -> np.ndarray:
    """Split a chunk's sentences into jobs of about ``job_tokens`` tokens (whole sentences).

    Args:
        bounds: int64 (s + 1,) sentence boundaries. job_tokens: target tokens per job, >= 1.

    Returns:
        int64 (n_jobs + 1,) sentence indices where jobs start; a long sentence is one job, whole.
    """
    S = len(bounds) - 1
    cuts = np.searchsorted(bounds, np.arange(job_tokens, int(bounds[-1]), job_tokens), side="left")
    return np.unique(np.concatenate([[0], np.clip(cuts, 0, S), [S]])).astype(np.int64)


def train_chunk(syn0: np.ndarray, syn1: np.ndarray, ids: np.ndarray, bounds: np.ndarray, *, keep_prob: np.ndarray,
                noise: tuple[np.ndarray, np.ndarray], window: int, negative: int, alpha0: float, alpha1: float,
                progress0: float, total_words: float, seed: int, epoch: int, chunk: int, job_tokens: int = 10_000,
                executor: Executor | None = None, block: Callable = train_block_pair) -> tuple[float, int, int]:
    """Train SGNS on one chunk of whole sentences, in place.

    The chunk is split into jobs of about ``job_tokens`` tokens. Without an
    executor the jobs run in order in this thread (bit-for-bit reproducible);
    with one (a thread pool) they run concurrently, lock-free (Hogwild), the
    compiled kernel releasing the GIL, as gensim's worker threads do.

    Args:
        syn0, syn1: float32 (V, D) C-contiguous input / context matrices, updated in place.
        ids: int32 (n,) token ids. bounds: int64 (s + 1,) sentence boundaries.
        keep_prob: float64 (V,) subsampling keep probabilities.
        noise: (prob, alias) from :func:`alias_table` over the noise distribution.
        window: max window; negative: noise words per pair (K).
        alpha0, alpha1: start / end learning rate; the rate at a point is
            alpha0 - (alpha0 - alpha1) * progress, progress in [0, 1] over all epochs.
        progress0: progress at the start of this chunk.
        total_words: corpus tokens times epochs (the progress denominator).
        seed, epoch, chunk: every job's random stream is a function of (seed, epoch, chunk, job).
        job_tokens: tokens per job. executor: thread pool for concurrent jobs, or None.
        block: the compiled kernel that trains one job: :func:`train_block_pair` (one pair at a
            time, word2vec.c's update) or :func:`replearn.lib.word2vec.hogbatch.train_block_shared`.

    Returns:
        (loss_sum, n_pairs, n_words): summed pair losses (nats), positive pairs trained,
        tokens read (before subsampling).
    """
    starts = split_jobs(bounds, job_tokens)
    n = len(starts) - 1
    seeds = block_seeds(seed, epoch, chunk, n)
    scale = 1.0 / max(total_words, 1.0)
    alias_prob, alias_idx = noise

    def job(b: int) -> tuple[float, int, int]:
        p0 = progress0 + float(bounds[starts[b]]) * scale  # exact progress at the job's first token
        return block(syn0, syn1, ids, bounds, starts[b], starts[b + 1], keep_prob, alias_prob, alias_idx,
                            int(window), int(negative), float(alpha0), float(alpha1), p0, scale, seeds[b])

    results = list(executor.map(job, range(n))) if executor is not None else [job(b) for b in range(n)]
    return (float(sum(r[0] for r in results)), int(sum(r[1] for r in results)), int(sum(r[2] for r in results)))
