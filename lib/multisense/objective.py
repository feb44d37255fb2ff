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
:func:`prior_from_counts`), not by gradient.

This module is the reference the compiled kernel (:mod:`.kernel`) is tested against.
"""

from __future__ import annotations

import numpy as np


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """log sigma(x), computed stably for large |x|; same shape as x."""
    x = np.asarray(x, dtype=np.float64)
    return -np.logaddexp(0.0, -x)


def window_scores(v: np.ndarray, log_prior: np.ndarray, u: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """a_z = log pi_z + sum_t log sigma(s_t <u_t, v_z>): the joint log-likelihood of each sense.

    Args:
        v: (K, D) sense vectors of the centre word. log_prior: (K,) log p(z|x).
        u: (T, D) context vectors of the targets. labels: (T,) 1 (window word) or 0 (noise word).

    Returns:
        float64 (K,) unnormalised log posteriors.
    """
    s = 2.0 * np.asarray(labels, dtype=np.float64) - 1.0
    f = np.asarray(v, dtype=np.float64) @ np.asarray(u, dtype=np.float64).T  # (K, T)
    return np.asarray(log_prior, dtype=np.float64) + log_sigmoid(f * s[None, :]).sum(axis=1)


def window_loss_and_grad(v: np.ndarray, log_prior: np.ndarray, u: np.ndarray, labels: np.ndarray
                         ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """NLL of one window, responsibilities and the posterior-weighted gradient (module docstring).

    Args:
        v: (K, D), log_prior: (K,), u: (T, D), labels: (T,) in {0, 1}.

    Returns:
        (nll, r, grad_v, grad_u): nll >= 0 when the prior is normalised (nats), r (K,) in [0, 1]
        summing to 1, grad_v (K, D) = dNLL/dv, grad_u (T, D) = dNLL/du (one row per target,
        summed by the caller where a word repeats). All float64.
    """
    v = np.asarray(v, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    lab = np.asarray(labels, dtype=np.float64)
    a = window_scores(v, log_prior, u, lab)
    m = a.max()
    lse = m + np.log(np.exp(a - m).sum())
    r = np.exp(a - lse)
    sig = 1.0 / (1.0 + np.exp(-(v @ u.T)))  # (K, T)
    e = (lab[None, :] - sig) * r[:, None]  # (K, T) posterior-weighted errors
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
