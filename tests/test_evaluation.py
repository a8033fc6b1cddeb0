"""Evaluation metrics against independent computations, connectivity, end-to-end evaluate."""

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from disrnn.evaluation import evaluate
from disrnn.evaluation.connectivity import (
    agreement,
    connectivity_dataset,
    connectivity_summary,
    group_connectivity,
    off_block_fraction,
)
from disrnn.evaluation.metrics import (
    bits_per_spike,
    corr_similarity,
    gaussian_loglik,
    mean_rate_stats,
    nlb_decoding_r2,
    null_shift,
    poisson_loglik,
    psth_r2,
    r2_per_unit,
    ridge_decoding_r2,
)
from disrnn.evaluation.pc import aggregated_posterior_pc
from disrnn.evaluation.steps import CONDITION_KEYS


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


def test_null_shift_is_the_drop_to_nlbs_null():
    rng = np.random.default_rng(5)
    lam = rng.uniform(0.2, 2.0, 3)
    k = rng.poisson(np.broadcast_to(lam * [1.0, 1.6, 0.7], (8, 30, 3)))
    null = lam  # the "training" means: not the test bins' own
    valid = np.ones((8, 30, 1), bool)
    valid[:, :4] = False
    valid[2, 10:] = False
    rate = rng.uniform(0.1, 3.0, k.shape)  # any prediction
    kk = k[np.broadcast_to(valid, k.shape)[..., 0]]  # (bin, unit) of the valid bins
    own = kk.mean(0)
    sel = np.broadcast_to(valid, k.shape)
    rr = rate[sel].reshape(kk.shape)
    nlb = (
        stats.poisson.logpmf(kk, rr).sum()
        - stats.poisson.logpmf(kk, np.broadcast_to(own, kk.shape)).sum()
    ) / (kk.sum() * np.log(2))
    shift = null_shift(k, null, valid)
    assert bits_per_spike(k, rate, null, valid) - shift == pytest.approx(nlb, rel=1e-10)
    assert shift > 0  # the test bins' own mean is the best constant for them
    assert null_shift(k, own, valid) == pytest.approx(0.0, abs=1e-12)


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


def test_pc_with_a_full_scale_matrix_near_the_gaussian_value():
    """Posterior covariance S S^T that couples the groups: the aggregated posterior of
    Gaussian means is about N(0, C + S S^T), whose PC is the Gaussian mutual information."""
    rng = np.random.default_rng(11)
    C = np.diag([1.0, 0.6, 1.2, 0.8])
    mu = rng.multivariate_normal(np.zeros(4), C, size=3000)
    S = np.array(
        [[1.0, 0.0, 0.0, 0.0], [0.2, 0.8, 0.0, 0.0], [1.2, 0.3, 0.5, 0.0], [0.0, 1.0, 0.1, 0.5]]
    )
    V = C + S @ S.T
    groups = np.array([0, 0, 1, 1])
    c0, c1 = groups == 0, groups == 1
    mi = 0.5 * (
        np.linalg.slogdet(V[np.ix_(c0, c0)])[1]
        + np.linalg.slogdet(V[np.ix_(c1, c1)])[1]
        - np.linalg.slogdet(V)[1]
    )
    assert mi > 0.25
    pc = aggregated_posterior_pc(mu, S, groups, n_samples=3000, seed=0)
    assert pc == pytest.approx(mi, abs=0.04)
    # the same means with an isotropic posterior: independent groups
    assert abs(aggregated_posterior_pc(mu, 1.0, groups, n_samples=3000, seed=0)) < 0.05


def test_pc_unchanged_by_maps_within_groups():
    """PC is invariant to an invertible linear map within each group when the posterior is
    carried along (means M mu, scale sigma M): the Jacobians cancel between the joint and
    the groups. A diagonal scale matrix is the per-latent sd."""
    rng = np.random.default_rng(12)
    C = np.array([[1.0, 0.4, 0.5], [0.4, 1.0, 0.0], [0.5, 0.0, 1.0]])
    mu = rng.multivariate_normal(np.zeros(3), C, size=1200)
    groups = np.array([0, 1, 1])
    M = np.array([[-1.7, 0.0, 0.0], [0.0, 2.0, 0.9], [0.0, -0.4, 0.6]])
    pc = aggregated_posterior_pc(mu, 0.4, groups, n_samples=1500, seed=3)
    mapped = aggregated_posterior_pc(mu @ M.T, 0.4 * M, groups, n_samples=1500, seed=3)
    assert pc > 0.1
    assert mapped == pytest.approx(pc, abs=1e-9)
    d = np.diag([0.3, 0.5, 0.4])
    assert aggregated_posterior_pc(mu, d, groups, seed=1) == aggregated_posterior_pc(
        mu, np.diag(d), groups, seed=1
    )
    with pytest.raises(ValueError, match="invertible"):
        aggregated_posterior_pc(mu, np.ones((3, 3)), groups)


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


def test_nlb_decoding_r2_averages_dimensions_uniformly_on_new_trials():
    """NLB's protocol: fit on train samples, R^2 on test samples, each behavior dimension's
    R^2 averaged with equal weight. A decodable dimension (R^2 ~ 1) beside a 10x larger
    noise dimension (R^2 ~ 0 on new samples) gives ~0.5, where a variance-weighted R^2
    would give ~0."""
    rng = np.random.default_rng(7)
    rates = rng.poisson(3.0, size=(2000, 5)).astype(float)
    w = np.array([0.5, -1.0, 0.2, 0.0, 0.8])
    y = np.stack([rates @ w + 0.01 * rng.standard_normal(2000), 10 * rng.standard_normal(2000)], 1)
    r2 = nlb_decoding_r2(rates[:1500], y[:1500], rates[1500:], y[1500:])
    assert 0.45 < r2 < 0.51
    assert nlb_decoding_r2(rates[:1500], y[:1500, 0], rates[1500:], y[1500:, 0]) > 0.999
    assert np.isnan(nlb_decoding_r2(rates[:5], y[:5], rates[5:], y[5:]))


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


def test_pc_matches_the_training_batch_estimator():
    """The exact-mixture estimate equals the batch estimator of disrnn.losses with M = N_tot."""
    torch = pytest.importorskip("torch")
    from disrnn.losses import partial_correlation

    rng = np.random.default_rng(10)
    C = np.array([[1.0, 0.5, 0.3], [0.5, 1.0, 0.0], [0.3, 0.0, 1.0]])
    mu = rng.multivariate_normal(np.zeros(3), C, size=1500)
    sigma = 0.5
    ours = aggregated_posterior_pc(mu, sigma, [0, 1, 1], n_samples=3000, seed=1)
    mu_t = torch.from_numpy(mu).float()  # the training estimator works in float32
    z_t = mu_t + sigma * torch.randn(
        mu_t.shape, generator=torch.Generator().manual_seed(0), dtype=mu_t.dtype
    )
    theirs = float(partial_correlation(z_t, mu_t, np.log(sigma), (1, 2), n_total=mu.shape[0]))
    assert ours == pytest.approx(theirs, abs=0.03)


# ------------------------------------------------------------------ end-to-end evaluate
def _rotation_session(rng, n_trial=24, n_time=20, n_unit=12, kind="spike_counts"):
    """Two independent noisy 2-d rotations (groups 0, 1) read out by random A."""
    z = np.zeros((n_trial, n_time, 4))
    z[:, 0] = rng.standard_normal((n_trial, 4))
    for k, w in enumerate((0.4, 0.9)):
        c, s = np.cos(w), np.sin(w)
        R = 0.95 * np.array([[c, -s], [s, c]])
        for t in range(1, n_time):
            z[:, t, 2 * k : 2 * k + 2] = z[
                :, t - 1, 2 * k : 2 * k + 2
            ] @ R.T + 0.3 * rng.standard_normal((n_trial, 2))
    A = rng.standard_normal((n_unit, 4)) * 0.4
    eta = z @ A.T
    if kind == "spike_counts":
        rates = np.log1p(np.exp(eta - 0.5))
        act = rng.poisson(rates).astype(np.int32)
    else:
        rates = eta
        act = (eta + 0.1 * rng.standard_normal(eta.shape)).astype(np.float32)
    split = np.array(["train"] * 14 + ["val"] * 4 + ["test"] * 6)
    heldout = np.zeros(n_unit, bool)
    heldout[[2, 7, 11]] = True
    ds = xr.Dataset(
        {
            "activity": (("trial", "time", "unit"), act, {"kind": kind}),
            "mask": (("trial", "time"), np.ones((n_trial, n_time), bool)),
            "hand": (
                ("trial", "time", "hand_dim"),
                z[..., :2] @ np.array([[1.0], [-0.5]]),
                {"kind": "behavior"},
            ),
            "true_latents": (("trial", "time", "latent"), z),
            "true_rates": (("trial", "time", "unit"), rates),
            "true_A": (("unit", "latent"), A),
            "true_B": (("latent", "unit"), rng.standard_normal((4, n_unit))),
        },
        coords={
            "trial": np.arange(n_trial) + 100,
            "time": (np.arange(n_time) + 0.5) * 0.02,
            "unit": np.arange(n_unit) + 1,
            "split": ("trial", split),
            "condition": ("trial", np.array(["a", "b"] * (n_trial // 2))),
            "heldout": ("unit", heldout),
            "latent_group": ("latent", np.array([0, 0, 1, 1])),
        },
        attrs={"bin_width": 0.02, "kind": kind, "source": "test"},
    )
    ds["mask"][-1, 5] = False  # one unobserved bin in a test trial
    return ds


@pytest.fixture(scope="module")
def tiny_fit(tmp_path_factory):
    pytest.importorskip("torch")
    training = pytest.importorskip("disrnn.fit.train")
    from disrnn.data.io import save_dataset
    from disrnn.fit.config import FitConfig

    root = tmp_path_factory.mktemp("eval")
    ds = _rotation_session(np.random.default_rng(11))
    path = save_dataset(ds, root / "session.nc")
    cfg = FitConfig.create("DisRNN", groups=(2, 2), epochs=2, patience=5, history=1)
    fit_dir = training.fit(ds, cfg, root / "fit", seed=0, device="cpu", progress=False)
    return root, path, fit_dir


def test_evaluate_end_to_end(tiny_fit, caplog):
    import json

    import xarray as xr

    from disrnn.data.io import load_dataset
    from disrnn.evaluation import evaluate
    from disrnn.fit import load_fit

    root, ds_path, fit_dir = tiny_fit
    caplog.set_level("INFO", logger="disrnn.evaluation")
    out = evaluate(fit_dir, ds_path, root / "eval", seed=3)
    for step in ("one-step prediction", "smoothing posterior", "rollouts"):  # progress
        assert f"evaluation: {step} done in" in caplog.text
    assert "smoothing posterior: best val NLL" in caplog.text
    assert sorted(p.name for p in out.iterdir()) == [
        "connectivity.nc",
        "latents.nc",
        "metrics.json",
        "rollout.nc",
        "units.nc",
    ]
    m = json.loads((out / "metrics.json").read_text())  # strict JSON: NaN written as null
    assert m["method"] == "DisRNN" and m["seed"] == 0 and m["eval_seed"] == 3
    assert m["groups"] == "2,2" and m["n_test_trials"] == 6 and m["n_heldout"] == 3
    assert m["session"] == "session" and m["fit_dir"] == str(fit_dir.resolve())
    assert m["epochs"] == 2 and isinstance(m["fit_seconds"], float)
    assert "differs" not in caplog.text  # the same data the fit was trained on

    ds = load_dataset(ds_path)
    fit = load_fit(fit_dir)
    test = ds.isel(trial=np.flatnonzero(ds["split"].values == "test"))
    x = test["activity"].values.astype(float)
    rate = fit.predict(test).values
    ok = np.ones(x.shape[:2], bool)
    ok[:, : fit.history] = False
    ok[-1, 5 : 6 + fit.history] = False  # the masked bin and the bins it is history of
    # independent truth: scipy's Poisson log pmf of the one-step predicted rates
    ll = stats.poisson.logpmf(x, rate)[ok]
    assert m["test_ll_per_bin_neuron"] == pytest.approx(ll.mean(), rel=1e-6)
    train = ds.isel(trial=np.flatnonzero(ds["split"].values == "train"))
    null = train["activity"].values[:, fit.history :].reshape(-1, x.shape[2]).mean(0)
    ho = ds["heldout"].values
    xh, rh = x[..., ho][ok], rate[..., ho][ok]
    co = (
        stats.poisson.logpmf(xh, rh).sum()
        - stats.poisson.logpmf(xh, np.broadcast_to(null[ho], xh.shape)).sum()
    ) / (xh.sum() * np.log(2))
    assert m["co_bps"] == pytest.approx(co, rel=1e-6)
    # NLB's null: each held-out unit's mean over these test bins
    own = xh.mean(0)
    co_nlb = (
        stats.poisson.logpmf(xh, rh).sum()
        - stats.poisson.logpmf(xh, np.broadcast_to(own, xh.shape)).sum()
    ) / (xh.sum() * np.log(2))
    assert m["co_bps"] - m["co_bps_null_shift"] == pytest.approx(co_nlb, rel=1e-6)
    for key in (
        "bps",
        "recon_r2",
        "pc",
        "tc",
        "group_latent_r2",
        "component_latent_r2",
        "W_pearson",
        "Wsub_pearson",
        "J_offblock_frac",
        "freerun_psth_r2",
        "freerun_corr_pearson",
        "reference_psth_r2",
    ):
        assert isinstance(m[key], float), key
    assert -1.0 <= m["group_latent_r2"] <= 1.0 and m["tc"] >= m["pc"] - 0.05
    assert set(m["behavior_r2"]["hand"]) == {"all", "running_sum", "g0", "g1"}
    assert isinstance(m["behavior_r2_nlb"]["hand"], float)
    assert m["kstep_r2"]["1"] is not None and "16" in m["kstep_r2"]
    # condition a/b alternates, 3 + 3 test trials: chance 0.5, accuracies are fractions
    assert m["condition_chance"] == 0.5
    for key in ("condition_accuracy", "condition_accuracy_time_mean"):
        assert 0.0 <= m[key] <= 1.0, key

    lat = xr.open_dataset(out / "latents.nc", engine="h5netcdf").load()
    assert lat["latents"].dims == ("trial", "time", "latent")
    np.testing.assert_allclose(lat["latents"].values, fit.latents(ds).values)
    assert list(lat["split"].values) == list(ds["split"].values)
    assert list(lat["latent_group"].values) == [0, 0, 1, 1]
    assert lat["aligned_latents"].shape == (24, 20, 4)
    by_time = lat["condition_accuracy_by_time"]
    assert by_time.dims == ("time",) and np.isnan(by_time.values[: fit.history]).all()
    assert np.nanmean(by_time.values) == pytest.approx(m["condition_accuracy_time_mean"])

    con = xr.open_dataset(out / "connectivity.nc", engine="h5netcdf").load()
    np.testing.assert_allclose(con["W"].values, fit.W)
    np.testing.assert_allclose(con["J"].values, fit.J)

    roll = xr.open_dataset(out / "rollout.nc", engine="h5netcdf").load()
    np.testing.assert_allclose(roll["predicted"].values, rate, rtol=1e-6)  # stored as float32
    L = fit.history
    # the first free-running bin is the one-step prediction from real history
    np.testing.assert_allclose(roll["rollout_mean"].values[:, L], rate[:, L], rtol=1e-5)
    assert np.isnan(roll["rollout_mean"].values[:, :L]).all()
    assert np.all(roll["rollout_sample"].values[:, L:] >= 0)


class _NonlinearStandIn:
    """Test double: a real Fit with its linear readout hidden, as for DisRNN-MLP (A/B None)."""

    def __init__(self, fit):
        self._fit = fit
        self.A = self.B = self.W = self.J = None

    def __getattr__(self, name):
        return getattr(self._fit, name)


def test_evaluate_nonlinear_variant_and_errors(tiny_fit):
    import json

    from disrnn.data.io import load_dataset
    from disrnn.evaluation import evaluate
    from disrnn.fit import load_fit

    root, ds_path, fit_dir = tiny_fit
    ds = load_dataset(ds_path).drop_vars(["true_latents", "true_A", "true_B", "hand"])
    ds = ds.drop_vars("heldout")
    out = evaluate(_NonlinearStandIn(load_fit(fit_dir)), ds, root / "eval_mlp")
    m = json.loads((out / "metrics.json").read_text())
    for key in (
        "J_offblock_frac",
        "W_pearson",
        "Wsub_r2",
        "group_latent_r2",
        "behavior_r2",
        "co_bps",
    ):
        assert m[key] is None, key
    assert isinstance(m["bps"], float) and isinstance(m["rate_r2_true"], float)
    no_test = ds.assign_coords(
        split=("trial", np.where(ds["split"].values == "test", "val", ds["split"].values))
    )
    with pytest.raises(ValueError, match="no test trials"):
        evaluate(fit_dir, no_test, root / "never")
    assert not (root / "never").exists()


def test_evaluate_continuous_one_group_fit(tmp_path):
    import json

    training = pytest.importorskip("disrnn.fit.train")
    from disrnn.evaluation import evaluate
    from disrnn.fit.config import FitConfig

    ds = _rotation_session(np.random.default_rng(12), kind="continuous").drop_vars("heldout")
    cfg = FitConfig.create("lrRNN", groups=(4,), epochs=2, patience=5)
    fit_dir = training.fit(ds, cfg, tmp_path / "fit", seed=1, device="cpu", progress=False)
    out = evaluate(fit_dir, ds, tmp_path / "eval")
    m = json.loads((out / "metrics.json").read_text())
    assert m["kind"] == "continuous" and m["likelihood"] == "gaussian"
    assert m["bps"] is None and m["co_bps"] is None and m["kstep_bps"] is None
    assert m["co_bps_null_shift"] is None
    # one fitted group, two true groups of 2: PC and group R^2 on the contiguous (2, 2) split
    assert m["group_partition"] == "contiguous" and m["partition_sizes"] == "2,2"
    assert isinstance(m["pc"], float) and isinstance(m["group_latent_r2_best_partition"], float)
    assert m["group_latent_r2_own_groups"] <= m["latent_r2_global"] + 1e-9
    assert m["group_latent_r2"] <= m["latent_r2_global"] + 1e-9
    assert m["group_latent_r2_best_partition"] <= m["latent_r2_global"] + 1e-9


class _OracleFit:
    """Test double with the Fit contract that knows the truth: its latents are the true
    latents with the two groups swapped (and rescaled), its rates the true rates, its A/B
    the true readout/encoder with the same permutation. Every truth metric must be exact."""

    history = 1

    def __init__(self, ds):
        self.ds = ds
        perm = np.array([2, 3, 0, 1])  # inferred group 0 = true group 1 and vice versa
        self.scale = np.array([2.0, 2.0, -0.5, -0.5])
        self.perm = perm
        self.groups = (2, 2)
        self.latent_group = np.array([0, 0, 1, 1])
        self.A = ds["true_A"].values[:, perm] / self.scale
        self.B = ds["true_B"].values[perm] * self.scale[:, None]
        self.W, self.J = self.A @ self.B, self.B @ self.A
        self.sigma_q = 0.5
        self.seed = 7

    def _sel(self, ds, name):
        return self.ds[name].sel(trial=ds["trial"].values).transpose("trial", "time", ...)

    def _nan_first(self, da):
        v = da.values.astype(float).copy()
        v[:, : self.history] = np.nan
        return da.copy(data=v)

    def latents(self, ds):
        z = self._sel(ds, "true_latents").values[..., self.perm] * self.scale
        da = xr.DataArray(z, dims=("trial", "time", "latent"))
        return self._nan_first(da).assign_coords(latent_group=("latent", self.latent_group))

    def predict(self, ds):
        return self._nan_first(self._sel(ds, "true_rates"))

    def nll(self, ds):
        r = self._sel(ds, "true_rates")
        return self._nan_first(r.copy(data=-stats.poisson.logpmf(ds["activity"].values, r.values)))

    def rollout(self, ds, n_steps, start=None, sample=False, generator=None):
        r = self._sel(ds, "true_rates").isel(time=slice(start, start + n_steps))
        return r.copy(data=np.random.default_rng(0).poisson(r.values)) if sample else r


def test_evaluate_with_an_oracle_stand_in_is_exact(tmp_path):
    import json

    from disrnn.evaluation import evaluate

    ds = _rotation_session(np.random.default_rng(13))
    out = evaluate(_OracleFit(ds), ds, tmp_path / "eval", seed=0)
    m = json.loads((out / "metrics.json").read_text())
    assert m["group_matching"] == "1->0,0->1" and m["group_partition"] == "fit"
    for key in ("group_latent_r2", "group_latent_r2_cv", "component_latent_r2", "latent_r2_global"):
        assert m[key] == pytest.approx(1.0, abs=1e-9), key
    for key in ("W_r2", "W_pearson", "Wsub_r2", "Wsub_pearson", "Wg0_r2", "Wg1_r2"):
        assert m[key] == pytest.approx(1.0, abs=1e-9), key
    assert m["W_mae"] == pytest.approx(0.0, abs=1e-12) and m["rate_r2_true"] == 1.0
    assert m["J_offblock_frac"] == pytest.approx(off_block_fraction(_OracleFit(ds).J, [0, 0, 1, 1]))
    # the true latents of two independent rotations: PC small, behavior (from group 0 of
    # the truth = inferred group 1) decoded from that group and not from the other
    assert m["pc"] < 0.2
    assert m["behavior_r2"]["hand"]["g1"] > 0.95 and m["behavior_r2"]["hand"]["g0"] < 0.5
    # k = 1 of the oracle's "rollout" is the true rate at every start
    assert m["kstep_r2"]["1"] == pytest.approx(m["kstep_r2"]["8"], abs=0.2)
    con = xr.open_dataset(out / "connectivity.nc", engine="h5netcdf").load()
    assert list(con["matched_group"].values) == [1, 0]
    np.testing.assert_allclose(
        con["W_g"].sel(group=0).values, con["true_W_g"].sel(true_group=1).values
    )


def test_condition_decoding_of_the_evaluation_skips_unscored_bins(tmp_path):
    """Condition = the sign of a true latent at bin 1: the oracle's latents decode it there
    as sklearn's logistic regression does on the same bins; the masked bin and the history
    bin are left out; without a condition the keys are null."""
    import json

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ds = _rotation_session(np.random.default_rng(13))
    labels = np.where(ds["true_latents"].values[:, 1, 0] > 0, "up", "down")
    ds = ds.assign_coords(condition=("trial", labels))
    oracle = _OracleFit(ds)
    out = evaluate(oracle, ds, tmp_path / "eval", seed=0)
    m = json.loads((out / "metrics.json").read_text())
    test = ds["split"].values == "test"
    fit_on = ~test
    _, counts = np.unique(labels[test], return_counts=True)
    assert m["condition_chance"] == pytest.approx(counts.max() / test.sum())
    z = oracle.latents(ds).values  # (trial, time, latent), bin 0 NaN
    keep = np.ones(ds.sizes["time"], bool)
    keep[[0, 5, 6]] = False  # history bin; masked bin 5 of the last trial and its next bin
    flat = z[:, keep].reshape(z.shape[0], -1)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=0))
    model.fit(flat[fit_on], labels[fit_on])
    expected = np.mean(model.predict(flat[test]) == labels[test])
    assert m["condition_accuracy"] == pytest.approx(expected)
    by_time = xr.open_dataset(out / "latents.nc", engine="h5netcdf")["condition_accuracy_by_time"]
    assert np.isnan(by_time.values[0]) and by_time.values[1] == 1.0
    plain = evaluate(oracle, ds.drop_vars("condition"), tmp_path / "plain", seed=0)
    m = json.loads((plain / "metrics.json").read_text())
    assert all(m[k] is None for k in CONDITION_KEYS)
    assert "condition_accuracy_by_time" not in xr.open_dataset(
        plain / "latents.nc", engine="h5netcdf"
    )
