"""Evaluation metrics against independent computations, connectivity, end-to-end evaluate."""

import numpy as np
import pytest
from scipy import stats

from disrnn.evaluation.connectivity import (
    agreement,
    connectivity_dataset,
    connectivity_summary,
    group_connectivity,
    off_block_fraction,
)
from disrnn.evaluation.metrics import (
    aggregated_posterior_pc,
    bits_per_spike,
    corr_similarity,
    gaussian_loglik,
    mean_rate_stats,
    poisson_loglik,
    psth_r2,
    r2_per_unit,
    ridge_decoding_r2,
)


# ------------------------------------------------------------------------ likelihoods
def test_gaussian_loglik_matches_scipy():
    rng = np.random.default_rng(0)
    x, m = rng.standard_normal((2, 4, 5, 3))
    sd = np.array([0.3, 1.0, 2.5])
    np.testing.assert_allclose(gaussian_loglik(x, m, sd), stats.norm.logpdf(x, m, sd))


def test_poisson_loglik_matches_scipy():
    rng = np.random.default_rng(1)
    r = rng.uniform(0.05, 4.0, (4, 5, 3))
    k = rng.poisson(r)
    np.testing.assert_allclose(poisson_loglik(k, r), stats.poisson.logpmf(k, r))


def test_bits_per_spike_and_co_bps_against_a_hand_computation():
    rng = np.random.default_rng(2)
    rate = rng.uniform(0.1, 3.0, (6, 20, 4))  # (trial, time, unit)
    k = rng.poisson(rate)
    null = np.array([0.5, 1.0, 1.5, 2.0])  # "training" mean counts per bin
    valid = np.ones((6, 20, 1), bool)
    valid[:, :2] = False  # history bins ignored
    kk, rr = k[:, 2:], rate[:, 2:]
    ll = stats.poisson.logpmf(kk, rr).sum()
    ll0 = stats.poisson.logpmf(kk, np.broadcast_to(null, kk.shape)).sum()
    expected = (ll - ll0) / (kk.sum() * np.log(2))
    assert bits_per_spike(k, rate, null, valid) == pytest.approx(expected, rel=1e-12)
    # co-bps: held-out units 1 and 3 on these ("test") trials
    ho = [1, 3]
    kh, rh = k[:, 2:, ho], rate[:, 2:, ho]
    e_ho = (
        stats.poisson.logpmf(kh, rh).sum()
        - stats.poisson.logpmf(kh, np.broadcast_to(null[ho], kh.shape)).sum()
    ) / (kh.sum() * np.log(2))
    assert bits_per_spike(k[..., ho], rate[..., ho], null[ho], valid) == pytest.approx(e_ho)
    # the null model itself scores 0
    assert bits_per_spike(k, np.broadcast_to(null, k.shape), null) == pytest.approx(0.0)


def test_r2_per_unit():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 50, 2))
    per, pooled = r2_per_unit(x, x)
    np.testing.assert_allclose(per, 1.0)
    assert pooled == 1.0
    per, pooled = r2_per_unit(x, np.zeros_like(x) + x.mean((0, 1)))
    np.testing.assert_allclose(per, 0.0, atol=1e-12)
    pred = x + 0.5
    pred[:, 0] = np.nan  # ignored
    per, _ = r2_per_unit(x, pred)
    xv = x[:, 1:]
    np.testing.assert_allclose(
        per, 1 - 0.25 * xv[..., 0].size / ((xv - xv.mean((0, 1))) ** 2).sum((0, 1))
    )


# -------------------------------------------------------------------------- PC and TC
def test_pc_near_zero_for_independent_groups():
    rng = np.random.default_rng(4)
    mu = rng.standard_normal((3000, 4)) * np.array([1.0, 0.5, 2.0, 1.0])
    pc = aggregated_posterior_pc(mu, 0.5, [0, 0, 1, 1], n_samples=2000, seed=0)
    # a finite mixture is not exactly a product of its marginals: small positive floor
    assert abs(pc) < 0.05
    assert aggregated_posterior_pc(mu, 0.5, [0, 0, 0, 0]) == 0.0


def test_pc_and_tc_near_the_gaussian_value_for_correlated_groups():
    rng = np.random.default_rng(5)
    sigma = 0.5
    C = np.array(
        [[1.0, 0.3, 0.6, 0.0], [0.3, 1.0, 0.0, 0.5], [0.6, 0.0, 1.0, 0.2], [0.0, 0.5, 0.2, 1.0]]
    )
    mu = rng.multivariate_normal(np.zeros(4), C, size=3000)  # posterior means
    S = C + sigma**2 * np.eye(4)  # covariance of the aggregated posterior
    groups = np.array([0, 0, 1, 1])

    def analytic(gs):
        ld = sum(np.linalg.slogdet(S[np.ix_(gs == g, gs == g)])[1] for g in np.unique(gs))
        return 0.5 * (ld - np.linalg.slogdet(S)[1])

    pc = aggregated_posterior_pc(mu, sigma, groups, n_samples=3000, seed=0)
    tc = aggregated_posterior_pc(mu, sigma, np.arange(4), n_samples=3000, seed=0)
    assert analytic(groups) > 0.2
    assert pc == pytest.approx(analytic(groups), abs=0.04)
    assert tc == pytest.approx(analytic(np.arange(4)), abs=0.05)
    assert tc > pc
    # fixed seed: repeatable
    assert aggregated_posterior_pc(mu, sigma, groups, n_samples=3000, seed=0) == pc


def test_pc_agrees_with_the_training_batch_estimator_if_present():
    losses = pytest.importorskip("disrnn.losses")
    torch = pytest.importorskip("torch")
    fn = getattr(losses, "partial_correlation", None)
    if fn is None:
        pytest.skip("disrnn.losses has no partial_correlation estimator yet")
    pytest.skip(f"signature of {fn} not yet cross-checked")  # see the final report
    del torch


# --------------------------------------------------------------------- ridge decoding
def test_ridge_decoding_r2_linear_behavior_and_noise():
    rng = np.random.default_rng(6)
    n_trials, n_time = 30, 40
    z = rng.standard_normal((n_trials * n_time, 3))
    trial = np.repeat(np.arange(n_trials), n_time)
    y_lin = z @ np.array([[1.0, -0.5], [0.3, 2.0], [0.0, 1.0]]) + 0.05 * rng.standard_normal(
        (z.shape[0], 2)
    )
    assert ridge_decoding_r2(z, y_lin, trial) > 0.99
    y_noise = rng.standard_normal(z.shape[0])
    assert abs(ridge_decoding_r2(z, y_noise, trial)) < 0.05
    assert np.isnan(ridge_decoding_r2(z[:10], y_noise[:10], np.zeros(10)))


# ------------------------------------------------------ generated vs observed statistics
def test_generation_statistics_perfect_and_shuffled():
    rng = np.random.default_rng(7)
    base = rng.standard_normal((1, 30, 5)) + 3
    cond = np.array([0, 1] * 10)
    x = base + cond[:, None, None] + 0.3 * rng.standard_normal((20, 30, 5))
    assert psth_r2(x, x, cond) == pytest.approx(1.0)
    assert mean_rate_stats(x, x)["rate_rmse"] == 0.0
    assert corr_similarity(x, x)["corr_pearson"] == pytest.approx(1.0)
    noise = rng.standard_normal(x.shape) + 3
    assert psth_r2(x, noise, cond) < 0.2
    gen = x + 0.5
    s = mean_rate_stats(x, gen)
    assert s["rate_rmse"] == pytest.approx(0.5)
    assert s["rate_pearson"] == pytest.approx(1.0)


# ----------------------------------------------------------------------- connectivity
def _low_rank(rng, n=12, sizes=(2, 3)):
    k = sum(sizes)
    A = rng.standard_normal((n, k))
    B = rng.standard_normal((k, n)) / np.sqrt(n)
    groups = np.repeat(np.arange(len(sizes)), sizes)
    return A, B, groups


def test_connectivity_identity_and_known_perturbation():
    rng = np.random.default_rng(8)
    A, B, g = _low_rank(rng)
    W = A @ B
    ag = agreement(W, W)
    assert ag["r2"] == 1.0 and ag["pearson"] == pytest.approx(1.0) and ag["mae"] == 0.0
    ag = agreement(W + 0.1, W)
    assert ag["mae"] == pytest.approx(0.1) and ag["rmse"] == pytest.approx(0.1)
    assert ag["pearson"] == pytest.approx(1.0)
    assert ag["r2"] == pytest.approx(1 - 0.01 * W.size / ((W - W.mean()) ** 2).sum())
    wg = group_connectivity(A, B, g)
    np.testing.assert_allclose(sum(wg.values()), W)
    # the same model with permuted group labels and a within-group basis change
    M0, M1 = rng.standard_normal((2, 2)), rng.standard_normal((3, 3))
    A2 = np.concatenate([A[:, 2:] @ M1, A[:, :2] @ M0], 1)
    B2 = np.concatenate([np.linalg.solve(M1, B[2:]), np.linalg.solve(M0, B[:2])], 0)
    s = connectivity_summary(A2, B2, [0, 0, 0, 1, 1], A, B, g, matching=[(0, 1), (1, 0)])
    assert s["W_r2"] == pytest.approx(1.0) and s["Wsub_r2"] == pytest.approx(1.0)
    assert s["Wg0_pearson"] == pytest.approx(1.0) and s["Wsub_mae"] == pytest.approx(0, abs=1e-12)


def test_off_block_fraction_and_dataset():
    rng = np.random.default_rng(9)
    J = rng.standard_normal((5, 5))
    g = np.array([0, 0, 1, 1, 1])
    Jb = np.where(g[:, None] == g[None, :], J, 0.0)
    assert off_block_fraction(Jb, g) == 0.0
    assert off_block_fraction(J, np.zeros(5)) == 0.0
    expected = (J[:2, 2:] ** 2).sum() + (J[2:, :2] ** 2).sum()
    assert off_block_fraction(J, g) == pytest.approx(expected / (J**2).sum())
    A, B, g = _low_rank(rng)
    ds = connectivity_dataset(A, B, g, unit=np.arange(12) + 100, true_A=A, true_B=B, true_groups=g)
    np.testing.assert_allclose(ds["W"].values, A @ B)
    np.testing.assert_allclose(ds["W_g"].sum("group").values, A @ B)
    ev = np.linalg.eigvals(B @ A)
    np.testing.assert_allclose(
        np.sort(np.abs(ds["J_eig_real"] + 1j * ds["J_eig_imag"])), np.sort(np.abs(ev))
    )
    assert ds.sizes["block_eig"] == 5 and list(ds["block_eig_group"].values) == [0, 0, 1, 1, 1]
    assert list(ds["matched_group"].values) == [-1, -1]
