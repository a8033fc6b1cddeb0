"""Loss terms against independent truths (scipy.stats, torch.distributions, closed forms)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from disrnn.losses import (
    gaussian_nll,
    kl_standard_normal,
    offblock_penalty,
    partial_correlation,
    poisson_nll,
)


def test_gaussian_nll_matches_scipy():
    rng = np.random.default_rng(0)
    x, mean = rng.normal(size=(2, 50, 7))
    log_s = rng.normal(size=7) * 0.5
    got = gaussian_nll(torch.tensor(x), torch.tensor(mean), torch.tensor(log_s)).numpy()
    want = -stats.norm.logpdf(x, loc=mean, scale=np.exp(log_s))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("link", ["exp", "softplus"])
def test_poisson_nll_matches_scipy(link):
    rng = np.random.default_rng(1)
    eta = rng.normal(size=(40, 6)) * 1.5
    rate = np.exp(eta) if link == "exp" else np.log1p(np.exp(eta))
    k = rng.poisson(rate)
    got = poisson_nll(torch.tensor(k), torch.tensor(eta), link).numpy()
    np.testing.assert_allclose(got, -stats.poisson.logpmf(k, rate), rtol=1e-8, atol=1e-8)
    # without the constant log k! the difference is exactly that constant
    no_const = poisson_nll(torch.tensor(k), torch.tensor(eta), link, constant=False).numpy()
    np.testing.assert_allclose(got - no_const, [[math.lgamma(v + 1) for v in r] for r in k])


def test_poisson_softplus_finite_for_very_negative_eta():
    eta = torch.tensor([-200.0, -50.0, 0.0])
    out = poisson_nll(torch.tensor([1.0, 0.0, 2.0]), eta, "softplus")
    assert torch.isfinite(out).all()


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(30, 5, generator=g, dtype=torch.float64)
    log_sigma = torch.tensor(-0.7, dtype=torch.float64)
    q = torch.distributions.Normal(mu, torch.exp(log_sigma).expand_as(mu))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    want = torch.distributions.kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(kl_standard_normal(mu, log_sigma), want)


def _pc_sample(cov0: torch.Tensor, sigma: float, m: int, seed: int):
    """Aggregated posterior: mu_j ~ N(0, cov0), z_i = mu_i + sigma eps (cov cov0 + sigma^2 I)."""
    g = torch.Generator().manual_seed(seed)
    k = cov0.shape[0]
    chol = torch.linalg.cholesky(cov0)
    mu = torch.randn(m, k, generator=g, dtype=torch.float64) @ chol.T
    z = mu + sigma * torch.randn(m, k, generator=g, dtype=torch.float64)
    return z, mu


def test_pc_near_zero_for_independent_groups():
    cov0 = torch.diag(torch.tensor([1.0, 2.0, 0.5, 1.5], dtype=torch.float64))
    z, mu = _pc_sample(cov0, 0.5, 3000, seed=0)
    pc = float(partial_correlation(z, mu, math.log(0.5), (2, 2), n_total=3000))
    assert abs(pc) < 0.05, pc


def test_pc_matches_analytic_gaussian_value():
    cov0 = torch.eye(4, dtype=torch.float64)
    cov0[0, 2] = cov0[2, 0] = 0.6
    cov0[1, 3] = cov0[3, 1] = 0.3
    sigma = 0.5
    z, mu = _pc_sample(cov0, sigma, 3000, seed=0)
    S = cov0 + sigma**2 * torch.eye(4, dtype=torch.float64)
    analytic = 0.5 * (torch.logdet(S[:2, :2]) + torch.logdet(S[2:, 2:]) - torch.logdet(S))
    pc = float(partial_correlation(z, mu, math.log(sigma), (2, 2), n_total=3000))
    assert float(analytic) > 0.1
    assert abs(pc - float(analytic)) < 0.03, (pc, float(analytic))
    # unequal groups (1, 3): still the analytic value of that split
    an13 = 0.5 * (torch.logdet(S[:1, :1]) + torch.logdet(S[1:, 1:]) - torch.logdet(S))
    pc13 = float(partial_correlation(z, mu, math.log(sigma), (1, 3), n_total=3000))
    assert abs(pc13 - float(an13)) < 0.03, (pc13, float(an13))


def test_pc_is_zero_for_one_group_and_uses_importance_weights():
    z, mu = _pc_sample(torch.eye(4, dtype=torch.float64), 0.5, 64, seed=1)
    assert float(partial_correlation(z, mu, math.log(0.5), (4,), 100)) == 0.0
    # explicit double loop of the estimator's formula with w_ij = (N-1)/(M-1)
    groups, n_tot, m, s = (1, 3), 1000, 64, 0.5
    logw = np.full((m, m), math.log((n_tot - 1) / (m - 1)))
    np.fill_diagonal(logw, 0.0)
    zz, mm = z.numpy(), mu.numpy()
    lg = np.stack(
        [stats.norm.logpdf(zz[:, None, sl], mm[None, :, sl], s).sum(-1) for sl in
         (slice(0, 1), slice(1, 4))],
        axis=-1,
    )  # fmt: skip
    from scipy.special import logsumexp

    lq = logsumexp(lg.sum(-1) + logw, axis=1) - math.log(n_tot)
    lqg = logsumexp(lg + logw[:, :, None], axis=1) - math.log(n_tot)
    want = np.mean(lq - lqg.sum(-1))
    got = float(partial_correlation(z, mu, math.log(s), groups, n_tot))
    assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_pc_gradient_matches_finite_differences():
    # the hand-written backward against central differences of the forward (float64),
    # in z, mu and log sigma, with unequal groups and importance weights
    g = torch.Generator().manual_seed(3)
    for groups in [(2, 1, 3), (1, 1, 1)]:
        k = sum(groups)
        z = torch.randn(24, k, generator=g, dtype=torch.float64, requires_grad=True)
        mu = torch.randn(24, k, generator=g, dtype=torch.float64, requires_grad=True)
        ls = torch.tensor(-0.4, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(
            lambda z, mu, ls, groups=groups: partial_correlation(z, mu, ls, groups, 500),
            (z, mu, ls),
        )


def test_pc_under_vmap_equals_one_call_per_item():
    # the rotation search and the stacked seeds call it under torch.func.vmap
    from torch.func import vmap

    g = torch.Generator().manual_seed(4)
    mu = torch.randn(3, 40, 4, generator=g, dtype=torch.float64, requires_grad=True)
    z = mu + 0.3 * torch.randn(3, 40, 4, generator=g, dtype=torch.float64)
    ls = torch.log(torch.tensor([0.3, 0.5, 0.7], dtype=torch.float64))

    def pc(z, mu, ls):
        return partial_correlation(z, mu, ls, (1, 3), 400)

    batched = vmap(pc)(z, mu, ls)
    (grad_batched,) = torch.autograd.grad(batched.sum(), mu)
    lone = torch.stack([pc(z[i], mu[i], ls[i]) for i in range(3)])
    (grad_lone,) = torch.autograd.grad(lone.sum(), mu)
    assert torch.allclose(batched, lone, rtol=1e-12, atol=1e-12)
    assert torch.allclose(grad_batched, grad_lone, rtol=1e-10, atol=1e-12)


def test_offblock_penalty_against_loop():
    rng = np.random.default_rng(2)
    J = rng.normal(size=(5, 5))
    groups = (2, 3)
    lab = np.repeat([0, 1], groups)
    vals = [J[i, j] ** 2 for i in range(5) for j in range(5) if lab[i] != lab[j]]
    got = float(offblock_penalty(torch.tensor(J), groups))
    assert got == pytest.approx(np.mean(vals))
    assert float(offblock_penalty(torch.tensor(J), (5,))) == 0.0
