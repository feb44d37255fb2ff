"""Skip-gram with negative sampling (SGNS): the compiled training kernel.

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

import numba
import numpy as np
from numba import njit, prange

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
def _draw_noise(cum_table: np.ndarray, state: np.uint64) -> np.int64:
    """Binary search of a cumulative table (gensim's cum_table), O(log V)."""
    r = (state >> np.uint64(16)) % np.uint64(cum_table[-1])
    lo = 0
    hi = cum_table.shape[0] - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if np.uint64(cum_table[mid]) > r:
            hi = mid
        else:
            lo = mid + 1
    return lo


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
        for k in range(D):
            syn1[t, k] += g32 * syn0[centre, k]
    for k in range(D):
        syn0[centre, k] += neu1e[k]
    return loss


@njit(fastmath=True)
def _train_block(syn0, syn1, ids, bounds, s_begin, s_end, keep_prob, cum_table, window, negative,
                 alpha0, alpha1, progress0, progress_scale, seed):
    """Train on sentences [s_begin, s_end) of a chunk. Returns (loss_sum, n_pairs, n_words)."""
    D = syn0.shape[1]
    neu1e = np.empty(D, dtype=np.float32)
    targets = np.empty(negative + 1, dtype=np.int64)
    longest = 0
    for s in range(s_begin, s_end):
        longest = max(longest, bounds[s + 1] - bounds[s])
    kept = np.empty(longest, dtype=np.int32)
    state = np.uint64(seed)
    loss = 0.0
    pairs = 0
    words = 0
    alpha = alpha0
    for s in range(s_begin, s_end):
        n, state = subsample(ids, bounds[s], bounds[s + 1], keep_prob, kept, state)
        words += bounds[s + 1] - bounds[s]
        # linear learning-rate decay by global progress, updated once per sentence
        p = progress0 + words * progress_scale
        alpha = alpha0 - (alpha0 - alpha1) * min(p, 1.0)
        if alpha < alpha1:
            alpha = alpha1
        for i in range(n):
            state = _next(state)
            lo, hi = window_span(i, n, window, state)
            centre = kept[i]
            for j in range(lo, hi):
                if j == i:
                    continue
                targets[0] = kept[j]
                m = 1
                for _ in range(negative):
                    state = _next(state)
                    t = _draw_noise(cum_table, state)
                    if t == kept[j]:
                        continue
                    targets[m] = t
                    m += 1
                loss += sgns_pair_update(syn0, syn1, centre, targets, m, alpha, neu1e)
                pairs += 1
    return loss, pairs, words


@njit(parallel=True)
def _train_chunk_parallel(syn0, syn1, ids, bounds, block_starts, keep_prob, cum_table, window, negative,
                          alpha0, alpha1, progress0, progress_scale, seeds, out):
    for b in prange(len(block_starts) - 1):
        loss, pairs, words = _train_block(syn0, syn1, ids, bounds, block_starts[b], block_starts[b + 1], keep_prob,
                                          cum_table, window, negative, alpha0, alpha1, progress0, progress_scale,
                                          seeds[b])
        out[b, 0] = loss
        out[b, 1] = pairs
        out[b, 2] = words


@njit
def _train_chunk_serial(syn0, syn1, ids, bounds, block_starts, keep_prob, cum_table, window, negative,
                        alpha0, alpha1, progress0, progress_scale, seeds, out):
    for b in range(len(block_starts) - 1):
        loss, pairs, words = _train_block(syn0, syn1, ids, bounds, block_starts[b], block_starts[b + 1], keep_prob,
                                          cum_table, window, negative, alpha0, alpha1, progress0, progress_scale,
                                          seeds[b])
        out[b, 0] = loss
        out[b, 1] = pairs
        out[b, 2] = words


def cumulative_noise_table(noise_probs: np.ndarray, domain: int = 2**31 - 1) -> np.ndarray:
    """gensim's ``cum_table``: int64 (V,) cumulative noise probabilities scaled to ``domain``.

    A noise word is drawn as the first index whose entry exceeds a uniform
    integer in [0, table[-1]).
    """
    p = np.asarray(noise_probs, dtype=np.float64)
    return np.round(np.cumsum(p) / p.sum() * domain).astype(np.int64)


def block_seeds(seed: int, epoch: int, chunk: int, n_blocks: int) -> np.ndarray:
    """uint64 (n_blocks,) seeds, a pure function of (seed, epoch, chunk, block)."""
    ss = np.random.SeedSequence([seed, epoch, chunk])
    return ss.generate_state(n_blocks, dtype=np.uint64)


def train_chunk(syn0: np.ndarray, syn1: np.ndarray, ids: np.ndarray, bounds: np.ndarray, *, keep_prob: np.ndarray,
                cum_table: np.ndarray, window: int, negative: int, alpha0: float, alpha1: float, progress0: float,
                total_words: float, seeds: np.ndarray, threads: int) -> tuple[float, int, int]:
    """Train SGNS on one chunk of whole sentences, in place.

    Args:
        syn0, syn1: float32 (V, D) C-contiguous input / context matrices.
        ids: int32 (n,) token ids. bounds: int64 (s + 1,) sentence boundaries.
        keep_prob: float64 (V,) subsampling keep probabilities.
        cum_table: int64 (V,) from :func:`cumulative_noise_table`.
        window: max window; negative: noise words per pair (K).
        alpha0, alpha1: start / end learning rate; the rate at a point is
            alpha0 - (alpha0 - alpha1) * progress, progress in [0, 1] over all epochs.
        progress0: progress at the start of this chunk.
        total_words: corpus tokens times epochs (the progress denominator).
        seeds: uint64 (n_blocks,) one per block; the chunk is split into n_blocks
            blocks of roughly equal token counts.
        threads: 1 runs blocks in order in this thread (deterministic); more runs them in parallel.

    Returns:
        (loss_sum, n_pairs, n_words): summed pair losses (nats), positive pairs trained,
        tokens read (before subsampling).
    """
    n_blocks = len(seeds)
    S = len(bounds) - 1
    # split sentences into blocks of about equal token counts
    targets = np.linspace(0, bounds[-1], n_blocks + 1)[1:-1]
    inner = np.searchsorted(bounds, targets)
    block_starts = np.unique(np.concatenate([[0], np.clip(inner, 0, S), [S]])).astype(np.int64)
    if len(block_starts) - 1 < n_blocks:
        seeds = seeds[: len(block_starts) - 1]
    n = len(block_starts) - 1
    out = np.zeros((n, 3), dtype=np.float64)
    # each block sees progress as if the blocks ran interleaved: scale its own words by n
    scale = n / max(total_words, 1.0)
    args = (syn0, syn1, ids, bounds, block_starts, keep_prob, cum_table, int(window), int(negative),
            float(alpha0), float(alpha1), float(progress0), float(scale), seeds, out)
    if threads > 1 and n > 1:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        _train_chunk_parallel(*args)
    else:
        _train_chunk_serial(*args)
    return float(out[:, 0].sum()), int(out[:, 1].sum()), int(out[:, 2].sum())
