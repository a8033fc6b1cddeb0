"""The network against independent computations: kernel, W = A B, rollout, post-hoc
transforms, co-smoothing, and config validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from helpers.datasets import toy_dataset
from scipy import stats

from disrnn.fit import fit, load_fit
from disrnn.fit.config import METHODS, FitConfig
from disrnn.fit.defaults import DEFAULT_BETA
from disrnn.models.modules import DisRNN, HistoryKernel


@pytest.fixture(scope="module")
def gaussian_ds():
    return toy_dataset()


@pytest.fixture(scope="module")
def lr_fit(gaussian_ds, tmp_path_factory):
    out = tmp_path_factory.mktemp("fits") / "lrRNN"
    fit(gaussian_ds, FitConfig.create("lrRNN", epochs=15), out, progress=False)
    return load_fit(out)


# ------------------------------------------------------------------------ modules
def test_history_kernel_against_explicit_loop():
    rng = np.random.default_rng(0)
    L, n = 3, 4
    lagged = torch.tensor(rng.normal(size=(5, L, n)), dtype=torch.float32)
    psi = np.exp(-np.arange(L)) / np.exp(-np.arange(L)).sum()
    want = np.zeros((5, n))
    for b in range(5):
        for lag in range(L):
            want[b] += psi[lag] * lagged[b, lag].numpy()
    for learned in (False, True):  # a learned kernel starts at the fixed one
        got = HistoryKernel(L, learned)(lagged).detach().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert isinstance(HistoryKernel(L, True).logits, torch.nn.Parameter)


def test_history_features_of_dataset_against_loop(gaussian_ds):
    from disrnn.fit.tensors import lagged_stack, trial_arrays

    L = 3
    arr = trial_arrays(gaussian_ds, L)
    lagged = lagged_stack(arr["th"], L)
    x = gaussian_ds["activity"].values
    tr, t = 2, 7  # arrays index t - L
    for lag in range(1, L + 1):
        np.testing.assert_allclose(lagged[tr, t - L, lag - 1], np.tanh(x[tr, t - lag]))
    np.testing.assert_allclose(arr["x"][tr, t - L], x[tr, t])
    assert lagged.shape[:2] == arr["x"].shape[:2]


def test_history_bins_gather_the_split_history_stack(gaussian_ds):
    """prepare()'s lazy (bin, L, unit) history equals tanh(x_{t-l}) of each valid bin of the
    split, read off the activity with explicit loops, and its kernel-weighted features
    equal the sum over lags."""
    from disrnn.fit.tensors import HistoryBins, check_split, history_frame, prepare, valid_bins

    L = 4
    data = prepare(gaussian_ds, L, "train", "cpu", learned_kernel=True)
    assert isinstance(data.h, HistoryBins) and data.h.shape[1:] == (L, gaussian_ds.sizes["unit"])
    frame, _, p = history_frame(gaussian_ds, L)  # window bin t is frame bin t + p
    ok = valid_bins(gaussian_ds, L) & (check_split(gaussian_ds) == "train")[:, None]
    want = np.array([
        [np.tanh(frame[tr, t + p - lag]) for lag in range(1, L + 1)]
        for tr, t in zip(*np.nonzero(ok), strict=True)
    ])  # fmt: skip
    assert len(data.h) == len(want) == data.n_bins
    idx = torch.tensor([0, 5, len(want) - 1, 3])
    np.testing.assert_allclose(data.h[idx].numpy(), want[idx.numpy()], rtol=1e-6)
    np.testing.assert_allclose(data.h[2:9].numpy(), want[2:9], rtol=1e-6)
    psi = torch.tensor([0.4, 0.3, 0.2, 0.1])
    np.testing.assert_allclose(
        data.h.weighted(psi, chunk=7).numpy(), np.einsum("l,bln->bn", psi.numpy(), want),
        rtol=1e-5, atol=1e-6,
    )  # fmt: skip
    # a frame that is not row-major (a transposed array's reshape) gathers the same rows
    th = data.h._rev.flip(0)
    column_major = th.T.contiguous().T
    assert torch.equal(column_major, th) and not column_major.is_contiguous()
    odd = HistoryBins(column_major, len(th) - data.h._start, L)
    np.testing.assert_array_equal(odd[idx].numpy(), data.h[idx].numpy())
    fixed = prepare(gaussian_ds, L, "train", "cpu", learned_kernel=False)
    from disrnn.models.modules import fixed_kernel

    np.testing.assert_allclose(
        fixed.h.numpy(), np.einsum("l,bln->bn", fixed_kernel(L).numpy(), want), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("likelihood,link", [("gaussian", "softplus"), ("poisson", "softplus"),
                                             ("poisson", "exp")])  # fmt: skip
def test_predict_equals_low_rank_rnn_step(gaussian_ds, tmp_path, likelihood, link):
    """fit.predict == f(W tanh(x_{t-1}) + A b + a) with W = A B from the fit's own arrays."""
    ds = gaussian_ds if likelihood == "gaussian" else toy_dataset(kind="spike_counts")
    cfg = FitConfig.create("DisRNN", epochs=2, likelihood=likelihood, link=link, history=1)
    f = load_fit(fit(ds, cfg, tmp_path / "f", progress=False))
    x = ds["activity"].values.astype(float)
    drive = np.tanh(x[:, :-1]) @ f.W.T + f.bias  # (trial, time - 1, unit)
    if likelihood == "poisson":
        drive = np.exp(drive) if link == "exp" else np.logaddexp(0, drive)
    pred = f.predict(ds)
    assert np.isnan(pred.values[:, 0]).all()
    np.testing.assert_allclose(pred.values[:, 1:], drive, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(f.W, f.A @ f.B)
    np.testing.assert_allclose(f.J, f.B @ f.A)


def test_rollout_against_unrolled_loop(lr_fit, gaussian_ds):
    ds = gaussian_ds.isel(trial=slice(0, 4))
    start, n_steps = 5, 12
    roll = lr_fit.rollout(ds, n_steps, start=start)
    assert roll.shape == (4, n_steps, ds.sizes["unit"])
    np.testing.assert_allclose(roll["time"].values, ds["time"].values[start : start + n_steps])
    x = ds["activity"].values[:, start - 1].astype(float)
    for t in range(n_steps):
        x = lr_fit.W @ np.tanh(x).T
        x = x.T + lr_fit.bias
        np.testing.assert_allclose(roll.values[:, t], x, rtol=1e-4, atol=1e-4)
    # the first generated bin is the one-step prediction
    pred = lr_fit.predict(ds).values[:, start]
    np.testing.assert_allclose(roll.values[:, 0], pred, rtol=1e-5, atol=1e-5)


def test_rollout_with_history_and_sampling(gaussian_ds, tmp_path):
    cfg = FitConfig.create("lrRNN", epochs=2, history=2, kernel="learned")
    f = load_fit(fit(gaussian_ds, cfg, tmp_path / "f", progress=False))
    ds = gaussian_ds.isel(trial=slice(0, 3))
    roll = f.rollout(ds, 60, start=10)  # past the trial's end: time extends
    assert roll.shape == (3, 60, 20) and np.isfinite(roll.values).all()
    assert np.all(np.diff(roll["time"].values) > 0)
    # step by step with the learned psi
    psi = f.module.kernel.psi.detach().numpy().astype(float)
    x = ds["activity"].values.astype(float)
    hist = [np.tanh(x[:, 9]), np.tanh(x[:, 8])]
    for t in range(5):
        h = psi[0] * hist[0] + psi[1] * hist[1]
        new = h @ f.W.T + f.bias
        np.testing.assert_allclose(roll.values[:, t], new, rtol=1e-4, atol=1e-4)
        hist = [np.tanh(new), hist[0]]
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    s1 = f.rollout(ds, 8, start=10, sample=True, generator=g1)
    s2 = f.rollout(ds, 8, start=10, sample=True, generator=g2)
    np.testing.assert_array_equal(s1.values, s2.values)
    assert not np.allclose(s1.values, f.rollout(ds, 8, start=10).values)
    with pytest.raises(ValueError, match="start"):
        f.rollout(ds, 5, start=1)


def test_poisson_sampled_rollout_is_counts(tmp_path):
    ds = toy_dataset(kind="spike_counts", n_trials=8)
    f = load_fit(fit(ds, FitConfig.create("lrRNN", epochs=2), tmp_path / "f", progress=False))
    s = f.rollout(ds, 10, sample=True).values
    np.testing.assert_array_equal(s, np.round(s))
    assert (s >= 0).all()


# ----------------------------------------------------------------- post-hoc methods
@pytest.mark.parametrize("method", ["LINT", "lrRNN+ICA"])
def test_posthoc_transforms_keep_w_and_predictions(lr_fit, gaussian_ds, tmp_path, method):
    cfg = FitConfig.create(method)
    f = load_fit(fit(gaussian_ds, cfg, tmp_path / method, init_from=lr_fit.path, progress=False))
    np.testing.assert_allclose(f.W, lr_fit.W, atol=1e-5)
    np.testing.assert_allclose(f.bias, lr_fit.bias, atol=1e-5)
    np.testing.assert_allclose(
        f.predict(gaussian_ds).values, lr_fit.predict(gaussian_ds).values, atol=1e-4
    )
    assert f.groups == (3, 3) and list(f.latent_group) == [0, 0, 0, 1, 1, 1]
    assert not np.allclose(f.A, lr_fit.A, atol=1e-3)  # the latents did change
    lat = f.latents(gaussian_ds).sel(trial=gaussian_ds.split == "train").values.reshape(-1, 6)
    c = np.corrcoef(lat[~np.isnan(lat).any(1)].T)
    if method == "lrRNN+ICA":  # ICA components are decorrelated on the training bins
        np.testing.assert_allclose(c, np.eye(6), atol=0.05)
    else:  # LINT: B' has orthonormal rows, A' columns are sorted by singular value
        np.testing.assert_allclose(f.B @ f.B.T, np.eye(6), atol=1e-4)
        norms = np.linalg.norm(f.A, axis=0)
        assert np.all(np.diff(norms) <= 1e-6)


@pytest.mark.parametrize("method", ["LINT", "lrRNN+ICA"])
def test_posthoc_posterior_is_the_lrrnns_carried_along(lr_fit, gaussian_ds, tmp_path, method):
    """A post-hoc fit's latents are z' = M z + c of its lrRNN's; its posterior is the lrRNN's
    N(mu, sigma_q^2 I) pushed through that map, N(M mu + c, sigma_q^2 M M^T)."""
    cfg = FitConfig.create(method)
    f = load_fit(fit(gaussian_ds, cfg, tmp_path / method, init_from=lr_fit.path, progress=False))
    z = lr_fit.latents(gaussian_ds).values.reshape(-1, 6)
    z2 = f.latents(gaussian_ds).values.reshape(-1, 6)
    ok = np.isfinite(z).all(1)
    X = np.c_[z[ok], np.ones(ok.sum())]
    coef, *_ = np.linalg.lstsq(X, z2[ok], rcond=None)  # the map, found from the latents
    np.testing.assert_allclose(X @ coef, z2[ok], atol=1e-4)
    np.testing.assert_allclose(f.latent_map, coef[:6].T, atol=1e-4)
    np.testing.assert_allclose(f.posterior_scale, lr_fit.sigma_q * coef[:6].T, atol=1e-4)
    np.testing.assert_array_equal(lr_fit.posterior_scale, lr_fit.sigma_q * np.eye(6))
    # sampled rollouts draw the latent noise with that covariance: the lrRNN's draws
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    np.testing.assert_allclose(
        f.rollout(gaussian_ds, 4, sample=True, generator=g1).values,
        lr_fit.rollout(gaussian_ds, 4, sample=True, generator=g2).values,
        atol=1e-4,
    )
    # the evaluation's PC and TC use that posterior
    from disrnn.evaluation import compute_evaluation
    from disrnn.evaluation.pc import aggregated_posterior_pc

    m, _ = compute_evaluation(f, gaussian_ds, seed=0, n_pc_samples=400, smoothing_posterior=False)
    test = gaussian_ds["split"].values == "test"
    mu = z2.reshape(gaussian_ds.sizes["trial"], -1, 6)[test].reshape(-1, 6)
    mu = mu[np.isfinite(mu).all(1)]
    want = aggregated_posterior_pc(mu, f.posterior_scale, f.latent_group, 400, 0)
    assert m["pc"] == pytest.approx(want, rel=1e-9)
    assert m["pc"] != pytest.approx(aggregated_posterior_pc(mu, f.sigma_q, f.latent_group, 400, 0))


def test_posthoc_fit_without_its_latent_map_warns(lr_fit, gaussian_ds, tmp_path, caplog):
    """A post-hoc folder written before fits kept their latent map loads with sigma_q I and
    says how to refit it."""
    out = fit(gaussian_ds, FitConfig.create("LINT"), tmp_path / "l", init_from=lr_fit.path,
              progress=False)  # fmt: skip
    out = Path(out)
    info = json.loads((out / "fit_info.json").read_text())
    del info["latent_map"]
    (out / "fit_info.json").write_text(json.dumps(info))
    with caplog.at_level("WARNING", logger="disrnn.fit.folder"):
        f = load_fit(out)
    assert "fit it again" in caplog.text and "fit_posthoc" in caplog.text
    np.testing.assert_array_equal(f.posterior_scale, f.sigma_q * np.eye(6))


def test_posthoc_rejects_non_lrrnn_base(gaussian_ds, tmp_path):
    base = fit(gaussian_ds, FitConfig.create("DisRNN", epochs=1), tmp_path / "d", progress=False)
    with pytest.raises(ValueError, match="transforms an lrRNN"):
        fit(gaussian_ds, FitConfig.create("LINT"), tmp_path / "l", init_from=base, progress=False)


def test_cosmoothing_encoder_sees_held_in_units_only(tmp_path):
    ds = toy_dataset(n_heldout=5)
    f = load_fit(fit(ds, FitConfig.create("DisRNN", epochs=3), tmp_path / "f", progress=False))
    assert np.all(f.B[:, -5:] == 0) and np.any(f.B[:, :-5] != 0)
    assert np.any(f.A[-5:] != 0)  # the decoder still predicts held-out units
    # changing held-out activity does not change the latents
    ds2 = ds.copy(deep=True)
    ds2["activity"][:, :, -5:] += 3.0
    np.testing.assert_allclose(f.latents(ds).values, f.latents(ds2).values)
    assert np.isfinite(f.predict(ds).values[:, 1:, -5:]).all()


def test_unequal_groups_and_mlp_variant(gaussian_ds, tmp_path):
    f = load_fit(
        fit(gaussian_ds, FitConfig.create("DisRNN", groups=(2, 4), epochs=2), tmp_path / "u",
            progress=False)
    )  # fmt: skip
    assert f.groups == (2, 4) and list(f.latent_group) == [0, 0, 1, 1, 1, 1]
    m = load_fit(fit(gaussian_ds, FitConfig.create("DisRNN-MLP", epochs=2), tmp_path / "m",
                     progress=False))  # fmt: skip
    assert m.A is None and m.W is None
    assert m.latents(gaussian_ds).shape == (40, 50, 6)
    assert np.isfinite(m.predict(gaussian_ds).values[:, 1:]).all()


def test_module_shapes():
    m = DisRNN(7, (2, 3), likelihood="poisson", history=2)
    y = m(torch.zeros(4, 2, 7))
    assert y.shape == (4, 7) and (y > 0).all()


# ---------------------------------------------------------------------- config
def test_config_defaults_per_method():
    assert set(METHODS) == {
        "lrRNN", "lrRNN+ICA", "LINT", "bdRNN", "DisRNN-full", "DisRNN", "DisRNN-MLP"
    }  # fmt: skip
    assert FitConfig.create("lrRNN").groups == (6,)
    assert FitConfig.create("lrRNN", rank=4).groups == (4,)
    assert FitConfig.create("bdRNN").alpha == 1.0
    assert FitConfig.create("DisRNN-full", groups=(3, 3)).groups == (1,) * 6
    assert FitConfig.create("DisRNN-MLP").encoder == "mlp"
    d = FitConfig.create("DisRNN", groups=(2, 4), beta=3.0)
    assert FitConfig.from_dict(d.to_dict()) == d
    assert d.resolve("spike_counts").likelihood == "poisson"
    assert FitConfig.create("DisRNN").resolve("continuous").beta == DEFAULT_BETA["continuous"]
    assert FitConfig.create("DisRNN").resolve("spike_counts").beta == DEFAULT_BETA["spike_counts"]
    assert FitConfig.create("DisRNN", beta=5.0).resolve("spike_counts").beta == 5.0
    # PC methods start from the PC-rotated lrRNN; the others from random weights
    assert FitConfig.create("DisRNN").resolve("continuous").init == "rotation"
    assert FitConfig.create("DisRNN-MLP").resolve("continuous").init == "rotation"
    assert FitConfig.create("bdRNN").resolve("continuous").init == "random"
    assert FitConfig.create("DisRNN", beta=0.0).resolve("continuous").init == "random"
    assert FitConfig.create("DisRNN", init="random").resolve("continuous").init == "random"
    assert FitConfig.create("DisRNN").restarts == 1


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (
            {"method": "DisRNN", "beta": -3.0},
            r"beta must be non-negative, got -3.0 \(did you write 1-3",
        ),
        ({"method": "bdRNN", "alpha": -1}, "alpha must be non-negative"),
        ({"method": "DisRNN", "groups": (3, 3), "rank": 5}, "sum to 6, not to the rank 5"),
        ({"method": "DisRNN", "groups": ()}, "at least one group"),
        ({"method": "DisRNN", "groups": (3, 0)}, "positive integer"),
        ({"method": "FooRNN"}, "unknown method 'FooRNN'; valid methods: lrRNN"),
        ({"method": "DisRNN", "likelihood": "bernoulli"}, "unknown likelihood 'bernoulli'"),
        ({"method": "lrRNN", "groups": (3, 3)}, "one latent group; give one size"),
        ({"method": "lrRNN", "beta": 2.0}, "method lrRNN fixes beta"),
        ({"method": "DisRNN", "lr": -1e-3}, "lr must be a positive number"),
        ({"method": "DisRNN", "epochs": 0}, "epochs must be an integer >= 1"),
        ({"method": "DisRNN", "kernel": "gamma"}, "unknown kernel"),
        ({"method": "DisRNN", "batch": 5}, "unknown FitConfig option"),
        ({"method": "DisRNN", "init": "ica"}, "unknown init 'ica'"),
        ({"method": "DisRNN", "restarts": 0}, "restarts must be an integer >= 1"),
        ({"method": "DisRNN", "pc_batch": 1}, "pc_batch must be an integer >= 2"),
    ],
)
def test_bad_config_values_fail_clearly(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FitConfig.create(**kwargs)


def test_learned_kernel_is_trained(gaussian_ds, tmp_path):
    cfg = FitConfig.create("DisRNN", epochs=3, history=3, kernel="learned")
    f = load_fit(fit(gaussian_ds, cfg, tmp_path / "k", progress=False))
    psi = f.module.kernel.psi.detach().numpy()
    assert psi.sum() == pytest.approx(1.0, abs=1e-6)
    assert not np.allclose(psi, np.exp(-np.arange(3)) / np.exp(-np.arange(3)).sum(), atol=1e-4)
    fixed = load_fit(fit(gaussian_ds, FitConfig.create("DisRNN", epochs=1, history=3),
                         tmp_path / "fx", progress=False))  # fmt: skip
    np.testing.assert_allclose(
        fixed.module.kernel.psi.numpy(),
        np.exp(-np.arange(3)) / np.exp(-np.arange(3)).sum(),
        rtol=1e-6,
    )
    assert np.isnan(f.latents(gaussian_ds).values[:, :3]).all()


def test_auto_epochs_scale_with_data():
    cfg = FitConfig.create("DisRNN")
    assert cfg.epochs is None and cfg.patience is None
    small = cfg.resolve_steps(950)  # 7 steps per epoch
    big = cfg.resolve_steps(100_000)
    assert small.epochs == 300 and big.epochs == 30 and small.patience == 60
    assert FitConfig.create("DisRNN", epochs=12).resolve_steps(950).epochs == 12


def test_posthoc_without_init_from_trains_the_same_lrrnn(lr_fit, gaussian_ds, tmp_path):
    cfg = FitConfig.create("LINT", epochs=15)
    f = load_fit(fit(gaussian_ds, cfg, tmp_path / "lint", progress=False))
    np.testing.assert_allclose(f.W, lr_fit.W, atol=1e-5)  # same seed, same lrRNN


# ------------------------------------------------------------- rotation initialisation
def test_rotate_latents_keeps_predictions_and_kl():
    from disrnn.fit.rotation import _orthogonal, rotate_latents
    from disrnn.losses import kl_standard_normal

    gen = torch.Generator().manual_seed(0)
    for enc in ("linear", "mlp"):
        m = DisRNN(9, (2, 3), encoder=enc, decoder=enc, generator=gen)
        with torch.no_grad():
            m.b.normal_(generator=gen)
        lagged = torch.randn(50, 1, 9, generator=gen)
        before, mu0 = m(lagged), m.encode(lagged[:, 0])
        rot = _orthogonal(5, gen)
        rotate_latents(m, rot)
        mu1 = m.encode(lagged[:, 0])
        torch.testing.assert_close(m(lagged), before, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(mu1, mu0 @ rot.T, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            kl_standard_normal(mu1, -1.0), kl_standard_normal(mu0, -1.0), atol=1e-4, rtol=1e-5
        )


def test_pc_rotation_unmixes_independent_groups():
    from disrnn.fit.rotation import _orthogonal, pc_rotation
    from disrnn.losses import partial_correlation

    gen = torch.Generator().manual_seed(1)
    n = 400
    # two independent 2-d groups, each a noisy ring (dependent within, not across)
    angles = torch.rand(n, 2, generator=gen) * 2 * torch.pi
    z = torch.stack(
        [angles[:, 0].cos(), angles[:, 0].sin(), angles[:, 1].cos(), angles[:, 1].sin()], 1
    ) * 1.5 + 0.1 * torch.randn(n, 4, generator=gen)
    mixed = z @ _orthogonal(4, gen).T
    log_sigma = -1.5

    def pc(m):
        eps = torch.randn(m.shape, generator=torch.Generator().manual_seed(2))
        return float(partial_correlation(m + 0.22 * eps, m, log_sigma, (2, 2), len(m)))

    rot, found = pc_rotation(
        mixed,
        log_sigma,
        (2, 2),
        gen,
        starts=4,
        steps=20,
        keep=1,
        refine_steps=60,
        bins=128,
        score_bins=400,
    )
    assert pc(mixed @ rot.T) < pc(z) + 0.05 < pc(mixed)
    torch.testing.assert_close(rot @ rot.T, torch.eye(4), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="rank_on must be 'score' or 'fit', got 'val'"):
        pc_rotation(mixed, log_sigma, (2, 2), gen, rank_on="val")


def test_pc_rotations_of_several_fits_equal_lone_searches():
    # the fits' starts descend as one batch: each fit still gets the rotation of its
    # own lone search, with as many bins as the others or fewer
    from disrnn.fit.rotation import _orthogonal, pc_rotation, pc_rotations

    gen = torch.Generator().manual_seed(3)
    angles = torch.rand(300, 2, generator=gen) * 2 * torch.pi
    z = torch.stack(
        [angles[:, 0].cos(), angles[:, 0].sin(), angles[:, 1].cos(), angles[:, 1].sin()], 1
    ) * 1.5 + 0.1 * torch.randn(300, 4, generator=gen)
    mus = [z @ _orthogonal(4, gen).T for _ in range(3)]
    sigmas = [-1.5, -1.3, -1.7]
    search = dict(starts=3, steps=10, keep=2, refine_steps=20, bins=64, score_bins=128)
    for fits in (mus, [mus[0], mus[1][:200], mus[2]]):  # alike bins, then not
        together = pc_rotations(
            fits, sigmas, (2, 2), [torch.Generator().manual_seed(i) for i in range(3)], **search
        )
        for i, (rot, pc) in enumerate(together):
            lone, lone_pc = pc_rotation(
                fits[i], sigmas[i], (2, 2), torch.Generator().manual_seed(i), **search
            )
            torch.testing.assert_close(rot, lone, atol=1e-4, rtol=0)
            assert pc == pytest.approx(lone_pc, abs=1e-5)


# ------------------------------------------------------------------- known input u_t
def with_input(ds: xr.Dataset, scale: float = 1.0, seed: int = 5) -> xr.Dataset:
    """A copy of ``ds`` with a random known ``input`` (trial, time, unit) of sd ``scale``."""
    u = scale * np.random.default_rng(seed).normal(size=ds["activity"].shape)
    return ds.assign(input=(("trial", "time", "unit"), u.astype(np.float32)))


@pytest.mark.parametrize("likelihood", ["gaussian", "poisson"])
def test_predict_with_input_equals_step_by_hand(gaussian_ds, tmp_path, likelihood):
    """fit.predict == f(W tanh(x_{t-1}) + A b + a + u_t); a mismatched dataset fails."""
    base = gaussian_ds if likelihood == "gaussian" else toy_dataset(kind="spike_counts")
    ds = with_input(base, 0.5)
    cfg = FitConfig.create("DisRNN", epochs=2, likelihood=likelihood, history=1)
    out = fit(ds, cfg, tmp_path / "f", progress=False)
    f = load_fit(out)
    assert f.uses_input and json.loads((out / "config.json").read_text())["input"] is True
    x = ds["activity"].values.astype(float)
    u = ds["input"].values.astype(float)
    drive = np.tanh(x[:, :-1]) @ f.W.T + f.bias + u[:, 1:]  # (trial, time - 1, unit)
    if likelihood == "poisson":
        drive = np.logaddexp(0, drive)
    np.testing.assert_allclose(f.predict(ds).values[:, 1:], drive, rtol=1e-4, atol=1e-5)
    if likelihood == "gaussian":  # the nll is that of N(drive, s^2)
        ref = -stats.norm.logpdf(x[:, 1:], drive, f.noise_sd)
        np.testing.assert_allclose(f.nll(ds).values[:, 1:], ref, rtol=1e-4, atol=1e-4)
    for method in (f.predict, f.nll, f.latents, lambda d: f.rollout(d, 3)):
        with pytest.raises(ValueError, match="trained with a known 'input'"):
            method(base)


def test_rollout_with_input_against_unrolled_loop(gaussian_ds, tmp_path):
    ds = with_input(gaussian_ds.isel(trial=slice(0, 12)), 0.5)
    f = load_fit(fit(ds, FitConfig.create("lrRNN", epochs=2), tmp_path / "f", progress=False))
    start, n_steps = 5, 12
    roll = f.rollout(ds, n_steps, start=start)
    x = ds["activity"].values[:, start - 1].astype(float)
    u = ds["input"].values.astype(float)
    for t in range(n_steps):
        x = np.tanh(x) @ f.W.T + f.bias + u[:, start + t]
        np.testing.assert_allclose(roll.values[:, t], x, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(roll.values[:, 0], f.predict(ds).values[:, start], atol=1e-5)
    with pytest.raises(ValueError, match="past the trial"):
        f.rollout(ds, ds.sizes["time"], start=start)


def test_absent_input_leaves_the_network_unchanged():
    """decode(z) == decode(z, None) exactly; a zero input adds exactly nothing."""
    m = DisRNN(7, (2, 1), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        m.a.copy_(torch.linspace(-1, 1, 7))
        z = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
        assert torch.equal(m.decode(z), m.decode(z, None))
        assert torch.equal(m.decode(z), m.decode(z, torch.zeros(5, 7)))
        u = torch.randn(5, 7, generator=torch.Generator().manual_seed(2))
        torch.testing.assert_close(m.decode(z, u), m.decode(z) + u)
        lagged = torch.randn(5, 1, 7, generator=torch.Generator().manual_seed(3))
        assert torch.equal(m(lagged), m(lagged, None))


def test_posthoc_transforms_keep_predictions_with_input(lr_fit, gaussian_ds, tmp_path):
    ds = with_input(gaussian_ds, 0.5)
    base = fit(ds, FitConfig.create("lrRNN", epochs=2), tmp_path / "lr", progress=False)
    lr = load_fit(base)
    for method in ("LINT", "lrRNN+ICA"):
        cfg = FitConfig.create(method)
        f = load_fit(fit(ds, cfg, tmp_path / method, init_from=base, progress=False))
        assert f.uses_input
        np.testing.assert_allclose(f.predict(ds).values, lr.predict(ds).values, atol=1e-4)
    with pytest.raises(ValueError, match="trained with a known 'input'"):
        fit(gaussian_ds, FitConfig.create("LINT"), tmp_path / "x", init_from=base, progress=False)
    with pytest.raises(ValueError, match="trained without a known 'input'"):
        fit(ds, FitConfig.create("LINT"), tmp_path / "y", init_from=lr_fit.path, progress=False)
