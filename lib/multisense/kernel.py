"""Multi-sense skip-gram: the compiled training kernel (one EM step per centre occurrence).

For every kept centre occurrence of word x (after word2vec's frequent-word
subsampling and dynamic window), the kernel

1. collects the T targets of its window: each context word y (label 1) and
   ``negative`` noise words drawn for it from the unigram^0.75 alias table (label 0);
2. E-step: computes every sense's joint log-likelihood
   a_z = log p(z|x) + sum_t log sigma(s_t <u_t, v(x,z)>) and the
   responsibilities r_z = softmax_z(a_z) = p(z | x, window);
3. M-step for the vectors: one SGD step on the window's negative marginal
   log-likelihood, which is the skip-gram step of each sense weighted by r_z
   (derivation in :mod:`.objective`); senses with r_z < ``R_MIN`` are skipped;
4. adds r_z to the expected sense counts n(x,z), from which the trainer
   re-estimates the prior after every chunk (M-step for the prior).

Updates follow word2vec.c's order: for each target t, u(t) moves by
sum_z g_zt v(x,z) right after its error is read; the sense vectors move once,
after all targets. Blocks of sentences run in parallel threads without locks
(Hogwild, Recht et al. 2011) like :mod:`replearn.lib.word2vec.sgns`, whose
random generator, subsampling and window code this reuses, so with one thread
a run is bit-for-bit reproducible. The expected counts are also added without
locks; a lost increment only perturbs the prior by one occurrence.
"""

from __future__ import annotations

from concurrent.futures import Executor

import numpy as np
from numba import njit

from replearn.lib.word2vec.sgns import (_draw_noise, _next, _uniform, block_seeds, decayed_alpha,
                                        longest_sentence, split_jobs, subsample, window_span)

#: responsibilities below this skip the sense's M-step (saves time; a negligible part of the gradient).
R_MIN = 1e-4
#: step size of the running estimate of each sense's expected noise log-likelihood (estep_noise='expected').
NOISE_RATE = 0.05
#: kernel codes of MultiSenseConfig.estep_noise
NOISE_MODES = {"none": 0, "sampled": 1, "expected": 2}


@njit(fastmath=True, inline="always")
def window_update(sv, syn1, s0, K, log_prior, counts, targets, labels, T, alpha, f, r, neu1e, du, pick,
                  noise_mode, noise_ll, evid, n_evid, negative, wts):
    """One E-step + SGD M-step for a centre occurrence; returns the window's NLL (nats).

    Args:
        sv: float32 (S, D) sense vectors, updated in place; the centre owns rows s0..s0+K-1.
        syn1: float32 (V, D) context vectors, updated in place.
        log_prior: float64 (S,) log p(z|x). counts: float64 (S,) expected sense counts, r added in place.
        targets: int64 (>= T,) target rows. labels: float32 (>= T,) 1 (window word) / 0 (noise).
        alpha: learning rate. f: float32 (>= K, >= T) scratch; r: float64 (>= K,) scratch;
        neu1e: float32 (>= K, D) scratch; du: float32 (D,) scratch.
        evid: int64 (>= n_evid,) evidence words of the E-step; with n_evid = 0 the E-step uses the
            window words of ``targets`` (labels 1). With n_evid > 0 (``estep_window`` > 0) it uses
            these instead, and the noise term counts ``negative`` noise words per evidence word.
        wts: float32 (>= T,) how many (centre, context) pairs each target's term stands for: 1 for a
            window word; 1 for a noise word of the pair kernel, m (the window's word count) for a noise
            word shared by the window's m pairs (kernel "shared"). Every term of the loss and its gradient
            is multiplied by it (:func:`.objective.window_loss_and_grad` with ``weights``).
    """
    D = sv.shape[1]
    # E-step: a_z = log prior + sum_t log sigma(s_t f_zt)
    amax = -1e300
    n_neg = 0
    neg_w = 0.0
    for j in range(T):
        if labels[j] < 0.5:
            n_neg += 1
            neg_w += wts[j]
    for z in range(K):
        a = log_prior[s0 + z]
        neg_sum = 0.0
        for j in range(T):
            t = targets[j]
            d = np.float32(0.0)
            for k in range(D):
                d += sv[s0 + z, k] * syn1[t, k]
            f[z, j] = d
            x = d if labels[j] > 0.5 else -d
            # log sigma(x) = -log(1 + exp(-x)), stable both ways
            if x > 0:
                ls = -np.log1p(np.exp(-x))
            else:
                ls = x - np.log1p(np.exp(x))
            if labels[j] > 0.5:
                if n_evid == 0:
                    a += ls
            else:
                neg_sum += wts[j] * ls
        if K > 1 and n_evid > 0:
            # E-step evidence: every word of the fixed E-step window (not the dynamic one)
            for j in range(n_evid):
                t = evid[j]
                d = np.float32(0.0)
                for k in range(D):
                    d += sv[s0 + z, k] * syn1[t, k]
                if d > 0:
                    a += -np.log1p(np.exp(-d))
                else:
                    a += d - np.log1p(np.exp(d))
        # neg_sum is the weighted sum over the noise terms; neg_w the number of (pair, noise word) terms
        n_scale = neg_w if n_evid == 0 else float(negative * n_evid)
        if noise_mode == 1 and n_neg > 0:
            a += neg_sum * (n_scale / neg_w)
        elif noise_mode == 2 and n_neg > 0:
            # running estimate of E_q[log sigma(-<u_n, v(x,z)>)] per sense, times the number of noise words
            a += n_scale * noise_ll[s0 + z]
            noise_ll[s0 + z] += NOISE_RATE * (neg_sum / neg_w - noise_ll[s0 + z])
        r[z] = a
        if a > amax:
            amax = a
    tot = 0.0
    for z in range(K):
        r[z] = np.exp(r[z] - amax)
        tot += r[z]
    nll = -(amax + np.log(tot))
    for z in range(K):
        r[z] /= tot
        counts[s0 + z] += r[z]
        for k in range(D):
            neu1e[z, k] = 0.0
    if pick >= 0.0 and K > 1:
        # stochastic EM: one sense drawn from the posterior takes the whole (unweighted) step
        acc = 0.0
        chosen = K - 1
        for z in range(K):
            acc += r[z]
            if pick < acc:
                chosen = z
                break
        for z in range(K):
            r[z] = 1.0 if z == chosen else 0.0
    # M-step: posterior-weighted skip-gram step
    for j in range(T):
        t = targets[j]
        for k in range(D):
            du[k] = 0.0
        for z in range(K):
            if r[z] < R_MIN:
                continue
            d = f[z, j]
            if d > 30.0:
                d = 30.0
            elif d < -30.0:
                d = -30.0
            g = np.float32(alpha * r[z] * wts[j] * (labels[j] - 1.0 / (1.0 + np.exp(-d))))
            for k in range(D):
                neu1e[z, k] += g * syn1[t, k]
                du[k] += g * sv[s0 + z, k]
        for k in range(D):
            syn1[t, k] += du[k]
    for z in range(K):
        if r[z] < R_MIN:
            continue
        for k in range(D):
            sv[s0 + z, k] += neu1e[z, k]
    return nll


@njit(fastmath=True, nogil=True)
def _train_block(sv, syn1, sense_start, log_prior, counts, ids, bounds, s_begin, s_end, keep_prob, alias_prob,
                 alias_idx, window, negative, alpha0, alpha1, progress0, progress_scale, seed, sample_sense, noise_mode, noise_ll,
                 estep_window, shared, share):
    """Train on sentences [s_begin, s_end) of a chunk. Returns (nll_sum, n_centres, n_words).

    ``shared``: the window's m context words share ``negative * ceil(m / share)`` noise words, each weighted by
    ``m * negative / draws`` so that the noise terms stand for the m * negative of the pair kernel (Ji et al.
    2016's shared negatives, :mod:`replearn.lib.word2vec.hogbatch`, in this model's orientation: the sense
    predicts its window). A centre then has m + negative * ceil(m / share) targets instead of m (1 + negative).
    ``share`` >= m shares one draw over the whole window. A noise word that is also a word of the window is
    skipped (the pair kernel skips a noise word equal to its pair's context word).
    """
    D = sv.shape[1]
    kmax = 1
    for x in range(sense_start.shape[0] - 1):
        kmax = max(kmax, sense_start[x + 1] - sense_start[x])
    tmax = 2 * window * (negative + 1)
    targets = np.empty(tmax, dtype=np.int64)
    labels = np.empty(tmax, dtype=np.float32)
    wts = np.ones(tmax, dtype=np.float32)
    f = np.empty((kmax, tmax), dtype=np.float32)
    r = np.empty(kmax, dtype=np.float64)
    neu1e = np.empty((kmax, D), dtype=np.float32)
    du = np.empty(D, dtype=np.float32)
    evid = np.empty(2 * estep_window + 1, dtype=np.int64)
    kept = np.empty(longest_sentence(bounds, s_begin, s_end), dtype=np.int32)
    state = np.uint64(seed)
    loss = 0.0
    centres = 0
    words = 0
    for s in range(s_begin, s_end):
        n, state = subsample(ids, bounds[s], bounds[s + 1], keep_prob, kept, state)
        words += bounds[s + 1] - bounds[s]
        alpha = decayed_alpha(progress0, words, progress_scale, alpha0, alpha1)
        for i in range(n):
            state = _next(state)
            lo, hi = window_span(i, n, window, state)
            T = 0
            for j in range(lo, hi):
                if j == i:
                    continue
                y = kept[j]
                targets[T] = y
                labels[T] = 1.0
                wts[T] = 1.0
                T += 1
                if shared:
                    continue
                for _ in range(negative):
                    t, state = _draw_noise(alias_prob, alias_idx, state)
                    if t == y:
                        continue
                    targets[T] = t
                    labels[T] = 0.0
                    wts[T] = 1.0
                    T += 1
            if T == 0:
                continue
            if shared:
                m = T
                draws = negative * max(1, (m + share - 1) // share)
                for _ in range(draws):
                    t, state = _draw_noise(alias_prob, alias_idx, state)
                    clash = False
                    for q in range(m):
                        if targets[q] == t:
                            clash = True
                            break
                    if clash:
                        continue
                    targets[T] = t
                    labels[T] = 0.0
                    wts[T] = np.float32(m * negative / draws)
                    T += 1
            x = kept[i]
            s0 = sense_start[x]
            K = sense_start[x + 1] - s0
            pick = -1.0
            if sample_sense:
                state = _next(state)
                pick = _uniform(state)
            n_evid = 0
            if estep_window > 0 and K > 1:
                for j in range(max(0, i - estep_window), min(n, i + estep_window + 1)):
                    if j != i:
                        evid[n_evid] = kept[j]
                        n_evid += 1
            loss += window_update(sv, syn1, s0, K, log_prior, counts, targets, labels, T, alpha, f, r, neu1e, du,
                                  pick, noise_mode, noise_ll, evid, n_evid, negative, wts)
            centres += 1
    return loss, centres, words


def train_chunk(sv: np.ndarray, syn1: np.ndarray, sense_start: np.ndarray, log_prior: np.ndarray,
                counts: np.ndarray, ids: np.ndarray, bounds: np.ndarray, *, keep_prob: np.ndarray,
                noise: tuple[np.ndarray, np.ndarray], window: int, negative: int, alpha0: float, alpha1: float,
                progress0: float, total_words: float, seed: int, epoch: int, chunk: int, job_tokens: int = 10_000,
                executor: Executor | None = None, sample_sense: bool = False,
                noise_mode: int = 1, noise_ll: np.ndarray | None = None, estep_window: int = 0,
                shared: bool = False, share: int = 3) -> tuple[float, int, int]:
    """Train multi-sense skip-gram on one chunk of whole sentences, in place.

    Jobs of about ``job_tokens`` tokens run in order in this thread (bit-for-bit
    reproducible) or, with a thread pool ``executor``, concurrently and lock-free.

    Args:
        sv: float32 (S, D) C-contiguous sense vectors; syn1: float32 (V, D) context vectors.
        sense_start: int64 (V + 1,) sense row offsets (see :mod:`.senses`).
        log_prior: float64 (S,) log p(z|x), read only (fixed during the chunk).
        counts: float64 (S,) expected sense counts, incremented in place.
        ids: int32 (n,) token ids in [0, V). bounds: int64 (s + 1,) sentence boundaries.
        keep_prob: float64 (V,) subsampling keep probabilities.
        noise: (prob, alias) from :func:`replearn.lib.word2vec.sgns.alias_table`.
        window, negative: as in :class:`.config.MultiSenseConfig`.
        alpha0, alpha1, progress0, total_words: linear learning-rate decay over all epochs.
        seed, epoch, chunk: each job's random stream is a function of (seed, epoch, chunk, job).
        shared, share: the window's context words share their noise words, ``share`` context words a draw
            (kernel "shared", :func:`_train_block`).

    Returns:
        (nll_sum, n_centres, n_words): summed window NLLs (nats), centre occurrences
        trained, tokens read before subsampling.
    """
    if noise_ll is None:
        noise_ll = np.full(sv.shape[0], -np.log(2.0))
    starts = split_jobs(bounds, job_tokens)
    n = len(starts) - 1
    seeds = block_seeds(seed, epoch, chunk, n)
    scale = 1.0 / max(total_words, 1.0)
    alias_prob, alias_idx = noise

    def job(b: int) -> tuple[float, int, int]:
        p0 = progress0 + float(bounds[starts[b]]) * scale
        return _train_block(sv, syn1, sense_start, log_prior, counts, ids, bounds, starts[b], starts[b + 1],
                            keep_prob, alias_prob, alias_idx, int(window), int(negative), float(alpha0),
                            float(alpha1), p0, scale, seeds[b], bool(sample_sense),
                            int(noise_mode), noise_ll, int(estep_window), bool(shared), int(share))

    results = list(executor.map(job, range(n))) if executor is not None else [job(b) for b in range(n)]
    return (float(sum(r[0] for r in results)), int(sum(r[1] for r in results)), int(sum(r[2] for r in results)))
