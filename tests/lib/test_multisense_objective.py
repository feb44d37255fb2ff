"""Multi-sense objective: autograd gradient of the marginal likelihood == posterior-weighted gradient;
posterior == a hand computation; prior M-step."""

from __future__ import annotations

import math

import numpy as np
import torch

from replearn.lib.multisense.objective import (prior_from_counts, size_biased_order, stick_breaking_prior,
                                               window_loss_and_grad,
                                               window_scores)
from replearn.lib.multisense.posterior import batch_posterior, context_log_likelihood, sense_posterior


def torch_nll(v, log_prior, u, labels):
    """Plain marginal likelihood: -log sum_z p(z|x) prod_t sigma(s_t <u_t, v_z>)."""
    s = 2 * labels - 1
    lik = torch.exp(log_prior) * torch.prod(torch.sigmoid((v @ u.T) * s[None, :]), dim=1)  # (K,)
    return -torch.log(lik.sum())


def test_marginal_likelihood_gradient_equals_posterior_weighted_gradient():
    rng = np.random.default_rng(0)
    for K, T, D in [(1, 4, 3), (2, 6, 5), (4, 9, 8)]:
        v = rng.normal(scale=0.5, size=(K, D))
        u = rng.normal(scale=0.5, size=(T, D))
        labels = (rng.random(T) < 0.4).astype(np.float64)
        prior = rng.dirichlet(np.ones(K))
        nll, r, gv, gu = window_loss_and_grad(v, np.log(prior), u, labels)
        tv = torch.tensor(v, requires_grad=True)
        tu = torch.tensor(u, requires_grad=True)
        loss = torch_nll(tv, torch.log(torch.tensor(prior)), tu, torch.tensor(labels))
        loss.backward()
        assert math.isclose(nll, loss.item(), rel_tol=1e-10)
        np.testing.assert_allclose(gv, tv.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(gu, tu.grad.numpy(), rtol=1e-9, atol=1e-12)
        # responsibilities are the posterior p(z | x, window) by Bayes' rule
        joint = prior * np.prod(1 / (1 + np.exp(-(v @ u.T) * (2 * labels - 1))), axis=1)
        np.testing.assert_allclose(r, joint / joint.sum(), rtol=1e-10)


def test_gradient_of_one_sense_is_skipgram_gradient():
    rng = np.random.default_rng(1)
    v, u = rng.normal(size=(1, 4)), rng.normal(size=(5, 4))
    labels = np.array([1, 0, 0, 1, 0.0])
    _, r, gv, _ = window_loss_and_grad(v, np.zeros(1), u, labels)
    sig = 1 / (1 + np.exp(-(u @ v[0])))
    np.testing.assert_allclose(gv[0], -((labels - sig) @ u))
    assert r.tolist() == [1.0]


def test_posterior_two_sense_toy_by_hand():
    # word with senses v0 = (2, 0), v1 = (0, 2); contexts u(river) = (1, 0), u(money) = (0, 1), u(the) = (0, 0)
    v = np.array([[2.0, 0.0], [0.0, 2.0]])
    u = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    q = np.array([0.25, 0.25, 0.5])  # noise distribution
    k = 2
    prior = np.array([0.7, 0.3])
    table = context_log_likelihood(v, u, q, k)

    def ls(x):
        return math.log(1 / (1 + math.exp(-x)))

    # noise term per sense: k * sum_n q(n) log sigma(-<u_n, v_z>) = 2 * (0.25 ls(-2) + 0.25 ls(0) + 0.5 ls(0))
    noise = 2 * (0.25 * ls(-2) + 0.25 * ls(0) + 0.5 * ls(0))
    assert math.isclose(table[0, 0], ls(2) + noise)
    assert math.isclose(table[0, 1], ls(0) + noise)
    assert math.isclose(table[1, 0], ls(0) + noise)
    # context "river": a_0 = log .7 + ls(2) + noise, a_1 = log .3 + ls(0) + noise (noise cancels: both senses equal)
    s = 1 / (1 + math.exp(-2))
    p0 = 0.7 * s / (0.7 * s + 0.3 * 0.5)
    np.testing.assert_allclose(sense_posterior(np.log(prior), table, np.array([0])), [p0, 1 - p0])
    # "river money": symmetric evidence -> the prior
    np.testing.assert_allclose(sense_posterior(np.log(prior), table, np.array([0, 1])), prior)
    # no context -> the prior; batch with padding agrees
    np.testing.assert_allclose(sense_posterior(np.log(prior), table, np.array([], dtype=int)), prior)
    b = batch_posterior(np.log(prior), table, np.array([[0, -1], [-1, -1], [1, 0]]))
    np.testing.assert_allclose(b, [[p0, 1 - p0], prior, prior])


def test_window_scores_match_log_joint():
    v = np.array([[1.0, -1.0]])
    u = np.array([[0.5, 0.5], [1.0, 0.0]])
    a = window_scores(v, np.log([1.0]), u, np.array([1, 0]))
    assert math.isclose(a[0], math.log(1 / (1 + math.exp(-0.0))) + math.log(1 / (1 + math.exp(1.0))))


def test_prior_m_step_is_smoothed_average_responsibility():
    start = np.array([0, 2, 3, 6])
    counts = np.array([3.0, 1.0, 5.0, 0.0, 0.0, 2.0])
    p = prior_from_counts(counts, start, smoothing=1.0)
    np.testing.assert_allclose(p[:2], [4 / 6, 2 / 6])
    np.testing.assert_allclose(p[2], 1.0)
    np.testing.assert_allclose(p[3:], [1 / 5, 1 / 5, 3 / 5])


def stick_breaking_reference(n, alpha):
    """exp E[log p(z = k|x)] of one word by plain loops (Bartunov et al. 2016, sec. 4), normalised."""
    from scipy.special import digamma
    K, out = len(n), []
    for k in range(K):
        lp = 0.0
        for j in range(k):  # the sticks broken before k: E[log(1 - beta_j)]
            a, b = 1 + n[j], alpha + sum(n[j + 1:])
            lp += digamma(b) - digamma(a + b)
        if k < K - 1:  # the last stick is all that is left (truncation)
            a, b = 1 + n[k], alpha + sum(n[k + 1:])
            lp += digamma(a) - digamma(a + b)
        out.append(lp)
    p = np.exp(out)
    return p / p.sum()


def test_stick_breaking_prior_equals_a_loop_over_the_sticks():
    rng = np.random.default_rng(3)
    k = np.array([1, 3, 5, 2, 1, 4])
    start = np.concatenate([[0], np.cumsum(k)])
    counts = rng.exponential(40.0, k.sum())
    counts[[3, 6, 7]] = 0.0
    got = stick_breaking_prior(counts, start, alpha=0.1)
    want = np.concatenate([stick_breaking_reference(counts[a:b], 0.1) for a, b in zip(start[:-1], start[1:])])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_stick_breaking_prior_starves_unused_senses_more_than_the_dirichlet_prior():
    start = np.array([0, 5])
    counts = np.array([300.0, 200.0, 0.5, 0.2, 0.0])  # two senses used, three barely
    sb = stick_breaking_prior(counts, start, alpha=0.1)
    dir_ = prior_from_counts(counts, start, smoothing=1.0)
    assert sb[:2].sum() > 0.995 and sb[2:].max() < 0.005
    assert sb[2:].max() < dir_[2:].min()
    # a larger concentration leaves more mass to the later sticks
    assert stick_breaking_prior(counts, start, alpha=5.0)[2:].sum() > sb[2:].sum()


def test_size_biased_order_sorts_each_words_senses_by_count():
    start = np.array([0, 3, 4, 6])
    counts = np.array([1.0, 5.0, 5.0, 2.0, 0.0, 9.0])
    order = size_biased_order(counts, start)
    assert order.tolist() == [1, 2, 0, 3, 5, 4]  # ties keep their order; rows stay with their word
