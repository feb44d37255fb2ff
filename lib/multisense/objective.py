"""The marginal likelihood of one window and its posterior-weighted gradient (plain numpy).

One centre occurrence of word x with senses z = 1..K, sense vectors v_z = v(x, z)
(K, D), prior pi_z = p(z|x), and T targets t with context vectors u_t (T, D) and
labels l_t (1 for a word of the window, 0 for a noise word drawn for it). With
the negative-sampling likelihood (Mikolov et al. 2013, eq. 4) of one target

    log p(t|x,z) = log sigma(s_t <u_t, v_z>),   s_t = 2 l_t - 1,

and the sense shared by the whole window (Tian et al. 2014, eq. 3-5), the loss is

    NLL = -log sum_z pi_z prod_t p(t|x,z) = -logsumexp_z a_z,
    a_z = log pi_z + sum_t log sigma(s_t <u_t, v_z>).

Its gradient is the posterior-weighted skip-gram gradient (Fisher's identity,
the E-step of EM: Dempster et al. 1977), with responsibilities

    r_z = p(z | x, window) = softmax_z(a_z),
    dNLL/dv_z = -r_z sum_t (l_t - sigma(<u_t, v_z>)) u_t,
    dNLL/du_t = -sum_z r_z (l_t - sigma(<u_t, v_z>)) v_z,

so one SGD step with rate alpha is the skip-gram step of each sense scaled by
r_z. The prior is re-estimated in closed form (the M-step of EM, see
:func:`prior_from_counts` and :func:`stick_breaking_prior`), not by gradient.

This module is the reference the compiled kernel (:mod:`.kernel`) is tested against.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """log sigma(x), computed stably for large |x|; same shape as x."""
    x = np.asarray(x, dtype=np.float64)
    return -np.logaddexp(0.0, -x)


def window_scores(v: np.ndarray, log_prior: np.ndarray, u: np.ndarray, labels: np.ndarray,
                  weights: np.ndarray | None = None) -> np.ndarray:
    """a_z = log pi_z + sum_t w_t log sigma(s_t <u_t, v_z>): the joint log-likelihood of each sense.

    Args:
        v: (K, D) sense vectors of the centre word. log_prior: (K,) log p(z|x).
        u: (T, D) context vectors of the targets. labels: (T,) 1 (window word) or 0 (noise word).
        weights: (T,) w_t > 0, how many pairs a target's term stands for (a noise word shared by
            the m context words of the window: m); None = all 1.

    Returns:
        float64 (K,) unnormalised log posteriors.
    """
    s = 2.0 * np.asarray(labels, dtype=np.float64) - 1.0
    w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=np.float64)
    f = np.asarray(v, dtype=np.float64) @ np.asarray(u, dtype=np.float64).T  # (K, T)
    return np.asarray(log_prior, dtype=np.float64) + (log_sigmoid(f * s[None, :]) * w[None, :]).sum(axis=1)


def window_loss_and_grad(v: np.ndarray, log_prior: np.ndarray, u: np.ndarray, labels: np.ndarray,
                         weights: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """NLL of one window, responsibilities and the posterior-weighted gradient (module docstring).

    Args:
        v: (K, D), log_prior: (K,), u: (T, D), labels: (T,) in {0, 1}.
        weights: (T,) each target's term multiplied by w_t (:func:`window_scores`); None = all 1.

    Returns:
        (nll, r, grad_v, grad_u): nll >= 0 when the prior is normalised (nats), r (K,) in [0, 1]
        summing to 1, grad_v (K, D) = dNLL/dv, grad_u (T, D) = dNLL/du (one row per target,
        summed by the caller where a word repeats). All float64.
    """
    v = np.asarray(v, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    lab = np.asarray(labels, dtype=np.float64)
    w = np.ones(len(lab)) if weights is None else np.asarray(weights, dtype=np.float64)
    a = window_scores(v, log_prior, u, lab, w)
    m = a.max()
    lse = m + np.log(np.exp(a - m).sum())
    r = np.exp(a - lse)
    sig = 1.0 / (1.0 + np.exp(-(v @ u.T)))  # (K, T)
    e = (lab[None, :] - sig) * r[:, None] * w[None, :]  # (K, T) posterior-weighted errors
    grad_v = -(e @ u)
    grad_u = -(e.T @ v)
    return float(-lse), r, grad_v, grad_u


def prior_from_counts(counts: np.ndarray, sense_start: np.ndarray, smoothing: float) -> np.ndarray:
    """M-step of the prior: p(z|x) = (n(x,z) + beta) / (sum_z' n(x,z') + K_x beta).

    n(x,z) is the summed responsibility r_z over occurrences of x; this is the
    MAP estimate of a categorical under a symmetric Dirichlet(1 + beta) prior.

    Args:
        counts: float (S,) expected sense counts n(x,z) >= 0.
        sense_start: int64 (V + 1,) sense row offsets. smoothing: beta > 0.

    Returns:
        float64 (S,) priors, each word's rows summing to 1.
    """
    c = np.asarray(counts, dtype=np.float64) + smoothing
    k = np.diff(sense_start)
    totals = np.add.reduceat(c, sense_start[:-1]) if len(c) else c
    return c / np.repeat(totals, k)


def stick_breaking_prior(counts: np.ndarray, sense_start: np.ndarray, alpha: float) -> np.ndarray:
    """Prior p(z|x) under a truncated stick-breaking (Dirichlet-process) prior, from expected sense counts.

    AdaGram (Bartunov et al. 2016, "Breaking Sticks and Ambiguities with Adaptive
    Skip-gram", AISTATS, sec. 3-4): p(z = k|x) = beta_k prod_{j<k} (1 - beta_j) with
    beta_k ~ Beta(1, alpha). The mean-field posterior of beta_k given the expected
    counts n_1..n_K of word x is Beta(a_k, b_k), a_k = 1 + n_k, b_k = alpha + sum_{j>k} n_j,
    and the E-step uses exp E[log p(z = k|x)]:

        E[log p(z = k|x)] = E[log beta_k] + sum_{j<k} E[log(1 - beta_j)],
        E[log beta_k] = psi(a_k) - psi(a_k + b_k),  E[log(1 - beta_k)] = psi(b_k) - psi(a_k + b_k),

    with the stick truncated at K = K_x (beta_K = 1, so E[log beta_K] = 0). The result
    is normalised per word, which changes no posterior (a constant per word). A sense
    whose count stays near 0 gets a prior near 0 (about exp(psi(1) - psi(2 + alpha + n_later))
    times what the earlier senses leave), so small ``alpha`` (0.1 in AdaGram) keeps few
    senses and pruning removes the rest: the data decides how many senses a word keeps.

    Args:
        counts: float (S,) expected sense counts n(x,z) >= 0.
        sense_start: int64 (V + 1,) sense row offsets. alpha: concentration > 0.

    Returns:
        float64 (S,) priors in (0, 1], each word's rows summing to 1.
    """
    n = np.asarray(counts, dtype=np.float64)
    start = np.asarray(sense_start, dtype=np.int64)
    if len(n) == 0:
        return n
    k = np.diff(start)
    owner = np.repeat(np.arange(len(k)), k)
    csum = np.cumsum(n)
    before = np.concatenate([[0.0], csum])[start[:-1]]  # counts of the rows before each word
    total = csum[start[1:] - 1] - before  # each word's total count
    tail = total[owner] - (csum - before[owner])  # sum_{j>k} n_j
    a, b = 1.0 + n, alpha + tail
    e_log_beta = digamma(a) - digamma(a + b)
    e_log_rest = digamma(b) - digamma(a + b)
    last = (np.arange(len(n)) - start[owner]) == k[owner] - 1
    e_log_beta[last] = 0.0
    e_log_rest[last] = 0.0
    rest = np.cumsum(e_log_rest)  # running sum, reset per word below
    rest_before = np.concatenate([[0.0], rest])[start[:-1]]
    earlier = (rest - e_log_rest) - rest_before[owner]  # sum_{j<k} E[log(1 - beta_j)] within the word
    log_p = e_log_beta + earlier
    log_p -= np.maximum.reduceat(log_p, start[:-1][k > 0])[np.cumsum(k > 0)[owner] - 1]
    p = np.exp(log_p)
    return p / np.add.reduceat(p, start[:-1][k > 0])[np.cumsum(k > 0)[owner] - 1]


def size_biased_order(counts: np.ndarray, sense_start: np.ndarray) -> np.ndarray:
    """Row order that sorts each word's senses by decreasing expected count (ties keep their order).

    The stick-breaking prior favours early sticks, so the most used sense should
    come first (a size-biased permutation, as in the stick-breaking construction
    of Sethuraman 1994); :func:`stick_breaking_prior` is then applied to the sorted rows.

    Args:
        counts: float (S,) expected sense counts. sense_start: int64 (V + 1,) offsets.

    Returns:
        int64 (S,) a permutation of the rows that keeps every word's rows in its own range.
    """
    counts = np.asarray(counts, dtype=np.float64)
    owner = np.repeat(np.arange(len(sense_start) - 1), np.diff(sense_start))
    return np.lexsort((np.arange(len(counts)), -counts, owner)).astype(np.int64)
