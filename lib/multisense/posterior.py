"""The posterior over senses of one occurrence given its context words.

At query time there are no sampled noise words, so each context word y
contributes the expected negative-sampling log-likelihood (Mikolov et al. 2013,
eq. 4, with the noise term replaced by its expectation under q):

    ell_z(y) = log sigma(<u(y), v(x,z)>) + k * sum_n q(n) log sigma(-<u(n), v(x,z)>),

and the posterior is Bayes' rule with the shared sense (Tian et al. 2014, eq. 5):

    p(z | x, y_1..y_m) = softmax_z( log p(z|x) + sum_i ell_z(y_i) ).

With m = 0 it is the prior.
"""

from __future__ import annotations

import numpy as np

from replearn.lib.multisense.objective import log_sigmoid


def context_log_likelihood(v: np.ndarray, u: np.ndarray, noise_probs: np.ndarray, negative: int) -> np.ndarray:
    """ell_z(y) for every sense z of one word and every vocabulary word y.

    Args:
        v: (K, D) sense vectors of the word. u: (V, D) context vectors.
        noise_probs: (V,) noise distribution q (sums to 1). negative: k >= 1.

    Returns:
        float64 (K, V) log-likelihood of each word as context of each sense.
    """
    f = np.asarray(v, dtype=np.float64) @ np.asarray(u, dtype=np.float64).T  # (K, V)
    noise = negative * (log_sigmoid(-f) @ np.asarray(noise_probs, dtype=np.float64))  # (K,)
    return log_sigmoid(f) + noise[:, None]


def sense_posterior(log_prior: np.ndarray, table: np.ndarray, context_ids: np.ndarray) -> np.ndarray:
    """p(z | x, context) from the prior and :func:`context_log_likelihood`.

    Args:
        log_prior: (K,) log p(z|x). table: (K, V) from :func:`context_log_likelihood`.
        context_ids: int (m,) context word ids, m >= 0 (repeats count twice).

    Returns:
        float64 (K,) probabilities summing to 1.
    """
    a = np.asarray(log_prior, dtype=np.float64) + table[:, np.asarray(context_ids, dtype=np.int64)].sum(axis=1)
    a = a - a.max()
    p = np.exp(a)
    return p / p.sum()


def batch_posterior(log_prior: np.ndarray, table: np.ndarray, contexts: np.ndarray) -> np.ndarray:
    """Posteriors of many occurrences of one word at once.

    Args:
        log_prior: (K,). table: (K, V). contexts: int (N, W) context ids padded with -1.

    Returns:
        float64 (N, K) posteriors (rows of all-padding contexts equal the prior).
    """
    contexts = np.asarray(contexts, dtype=np.int64)
    padded = np.concatenate([table, np.zeros((table.shape[0], 1))], axis=1)  # column V = padding, contributes 0
    idx = np.where(contexts < 0, table.shape[1], contexts)
    a = np.asarray(log_prior, dtype=np.float64)[None, :] + padded[:, idx].sum(axis=2).T  # (N, K)
    a -= a.max(axis=1, keepdims=True)
    p = np.exp(a)
    return p / p.sum(axis=1, keepdims=True)
