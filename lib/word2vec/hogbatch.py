"""Skip-gram with negative sampling, shared-negatives kernel ("HogBatch", Ji et al. 2016).

Same model and loss as :mod:`replearn.lib.word2vec.sgns` (Mikolov et al. 2013,
eq. 4), trained in word2vec.c's orientation: for the centre word w at a
position, the input vectors v(c) of its context words c_1..c_m (rows of
``syn0``) predict w through the context matrix U (``syn1``). Ji et al.
("Parallelizing Word2Vec in Shared and Distributed Memory", 2016, section 3,
"pWord2Vec") let those m pairs share the same K noise words n_1..n_K, so the
step for one centre word is a small matrix product instead of m (1 + K) vector
operations:

    X = V[c_1..c_m]           (m, D)    input rows, gathered
    Y = U[w, n_1..n_K]        (1 + K, D) output rows, gathered
    G = alpha * (L - sigma(X Y^T))      (m, 1 + K), L[:, 0] = 1, L[:, 1:] = 0
    V[c_a] += (G Y)[a]        U[t_b] += (G^T X)[b]

Every gradient is taken at the gathered (pre-step) rows; the increments are
added to the shared matrices without locks (Hogwild), as pWord2Vec does. Each
pair's loss is that of :func:`~replearn.lib.word2vec.sgns.sgns_pair_update`
(nats). The noise words are drawn once per centre word instead of once per
pair, which is where most of the saving is: K random rows of U per centre word
rather than K per pair. Noise words equal to w are skipped, as word2vec.c does.

The random streams (subsampling, dynamic window, noise) are those of the pair
kernel, per block, so with one thread a run is bit-for-bit reproducible.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from replearn.lib.word2vec.sgns import (_next, decayed_alpha, draw_noise_words, longest_sentence, subsample,
                                       window_span)


@njit(inline="always")
def _gather(matrix, rows, n, out):
    """Copy rows ``rows[:n]`` of ``matrix`` (V, D) into ``out[:n]`` (2-D indexing: no row views on a shared matrix)."""
    for a in range(n):
        r = rows[a]
        for k in range(matrix.shape[1]):
            out[a, k] = matrix[r, k]


@njit(fastmath=True, inline="always")
def sgns_shared_update(syn0, syn1, inputs, n_in, outputs, n_out, alpha, x, y, g):
    """One shared-negatives SGD step for one centre word; returns the summed loss of its n_in pairs.

    Args:
        syn0: float32 (V, D) input vectors v, updated in place.
        syn1: float32 (V, D) context vectors u, updated in place.
        inputs: int rows (>= n_in,) of syn0: the context words c_1..c_m.
        n_in: m, >= 1.
        outputs: int rows (>= n_out,) of syn1; ``outputs[0]`` is the centre word w (label 1),
            the rest the shared noise words (label 0).
        n_out: 1 + K' (K' <= K noise words after skipping those equal to w).
        alpha: learning rate.
        x: float32 (>= m, D) scratch for the gathered input rows.
        y: float32 (>= 1 + K, D) scratch for the gathered output rows.
        g: float32 (>= m, >= 1 + K) scratch for the gradient coefficients G.

    Returns:
        Sum over the m pairs of L = -log sigma(<u(w), v(c)>) - sum_k log sigma(-<u(n_k), v(c)>),
        before the step (nats).
    """
    D = syn0.shape[1]
    _gather(syn0, inputs, n_in, x)
    _gather(syn1, outputs, n_out, y)
    loss = 0.0
    for a in range(n_in):
        # pair loss = sum_b log(1 + e_b) + sum_{b > 0} f_b with e_b = exp(-f_b), with one log per pair (of
        # the product; each factor is at most 1 + e^30, so it is flushed into the sum before it could overflow)
        prod = 1.0
        lin = 0.0
        for b in range(n_out):
            f = np.float32(0.0)
            for k in range(D):
                f += x[a, k] * y[b, k]
            if f > 30.0:
                f = np.float32(30.0)
            elif f < -30.0:
                f = np.float32(-30.0)
            e = np.exp(-f)  # sigma(f) = 1 / (1 + e)
            prod *= 1.0 + e
            if prod > 1e200:
                loss += np.log(prod)
                prod = 1.0
            if b == 0:
                g[a, b] = alpha * (e / (1.0 + e))  # alpha * (1 - sigma)
            else:
                g[a, b] = -alpha / (1.0 + e)  # alpha * (0 - sigma)
                lin += f
        loss += np.log(prod) + lin
    for a in range(n_in):  # V[c_a] += sum_b G[a, b] Y[b]
        r = inputs[a]
        for b in range(n_out):
            gab = g[a, b]
            for k in range(D):
                syn0[r, k] += gab * y[b, k]
    for b in range(n_out):  # U[t_b] += sum_a G[a, b] X[a]
        r = outputs[b]
        for a in range(n_in):
            gab = g[a, b]
            for k in range(D):
                syn1[r, k] += gab * x[a, k]
    return loss


@njit(fastmath=True, nogil=True)
def train_block_shared(syn0, syn1, ids, bounds, s_begin, s_end, keep_prob, alias_prob, alias_idx, window, negative,
                       alpha0, alpha1, progress0, progress_scale, seed):
    """Train on sentences [s_begin, s_end) of a chunk with shared negatives.

    Arguments and random streams as :func:`replearn.lib.word2vec.sgns.train_block_pair`.

    Returns:
        (loss_sum, n_pairs, n_words): summed pair losses (nats), positive pairs, tokens read.
    """
    D = syn0.shape[1]
    x = np.empty((2 * window, D), dtype=np.float32)
    y = np.empty((negative + 1, D), dtype=np.float32)
    g = np.empty((2 * window, negative + 1), dtype=np.float32)
    inputs = np.empty(2 * window, dtype=np.int64)
    outputs = np.empty(negative + 1, dtype=np.int64)
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
            m = 0
            for j in range(lo, hi):
                if j != i:
                    inputs[m] = kept[j]
                    m += 1
            if m == 0:
                continue
            outputs[0] = kept[i]
            n_out, state = draw_noise_words(alias_prob, alias_idx, negative, kept[i], outputs, state)
            loss += sgns_shared_update(syn0, syn1, inputs, m, outputs, n_out, alpha, x, y, g)
            pairs += m
    return loss, pairs, words
