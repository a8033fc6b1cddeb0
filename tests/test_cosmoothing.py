"""The smoothing posterior of a fit (disrnn.evaluation.cosmoothing)."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from disrnn.evaluation.cosmoothing import (  # noqa: E402
    coordinated_dropout,
    cosmoothing_metrics,
    fit_smoothing_posterior,
)
from disrnn.models.smoothing import (  # noqa: E402
    SmoothingEncoder,
    acausal_conv,
    initial_kernel,
    svd_basis,
)

SETTINGS = {"epochs": 60, "patience": 10, "lags": 5}


@pytest.fixture(scope="module")
def toy(poisson_lrrnn):
    """(dataset, lrRNN fit) of a small simulated Poisson session (conftest)."""
    return poisson_lrrnn


def test_smoothed_co_bps_at_least_the_causal_and_positive(toy):
    ds, fit = toy
    assert "pre_activity" in ds and bool(ds["heldout"].any())
    post = fit_smoothing_posterior(fit, ds, seed=0, **SETTINGS)
    m = cosmoothing_metrics(fit, post, ds)
    assert m["co_bps_smoothed"] > 0
    assert m["co_bps_smoothed"] >= m["co_bps"] - 0.02
    assert np.isfinite(m["co_bps_smoothed_all_bins"])
    assert m["heldout_ll_smoothed"] >= m["heldout_ll"] - 0.05
    assert m["n_heldout"] == int(ds["heldout"].sum())

    pred = post.predict(ds)
    assert pred.dims == ("trial", "time", "unit") and pred.shape == ds["activity"].shape
    assert np.isfinite(pred.values).all() and (pred.values > 0).all()  # every bin
    lat = post.latents(ds)
    assert lat.dims == ("trial", "time", "latent")
    np.testing.assert_array_equal(lat["latent_group"].values, fit.latent_group)


def test_co_bps_uses_the_evaluation_rule(toy):
    """co_bps here equals compute_evaluation's co_bps (same null rate, same bins)."""
    from disrnn.evaluation import compute_evaluation

    ds, fit = toy
    post = fit_smoothing_posterior(fit, ds, seed=0, epochs=2)
    ours = cosmoothing_metrics(fit, post, ds)["co_bps"]
    theirs = compute_evaluation(fit, ds, n_pc_samples=50)[0]["co_bps"]
    assert ours == pytest.approx(theirs, rel=1e-10)


def test_decoder_unchanged(toy):
    ds, fit = toy
    A, a = fit.module.A.detach().clone(), fit.module.a.detach().clone()
    B = fit.module.B.detach().clone()
    post = fit_smoothing_posterior(fit, ds, seed=1, epochs=5, dropout=0.3)
    torch.testing.assert_close(fit.module.A, A, rtol=0, atol=0)
    torch.testing.assert_close(fit.module.a, a, rtol=0, atol=0)
    torch.testing.assert_close(fit.module.B, B, rtol=0, atol=0)
    torch.testing.assert_close(post.decoder.A, A, rtol=0, atol=0)
    torch.testing.assert_close(post.decoder.a, a, rtol=0, atol=0)
    np.testing.assert_array_equal(post.A, fit.A)
    assert not torch.allclose(post.encoder.B, B[:, ~torch.from_numpy(post.heldout)])


def test_dropout_chosen_by_the_val_loss(toy):
    """A tuple of dropout fractions fits one posterior each and keeps the one with the
    lowest val held-out NLL: the same predictions as that fraction's lone fit."""
    ds, fit = toy
    lone = {p: fit_smoothing_posterior(fit, ds, seed=2, epochs=4, dropout=p) for p in (0.0, 0.3)}
    val = {p: post.info["best_val_nll"] for p, post in lone.items()}
    chosen = fit_smoothing_posterior(fit, ds, seed=2, epochs=4, dropout=[0.0, 0.3])
    want = min(val, key=val.get)
    assert chosen.config.dropout == want
    assert chosen.info["dropout_val_nll"] == {str(p): v for p, v in val.items()}
    np.testing.assert_array_equal(chosen.predict(ds).values, lone[want].predict(ds).values)
    with pytest.raises(ValueError, match="non-empty list"):
        fit_smoothing_posterior(fit, ds, dropout=())


def test_same_seed_same_predictions(toy):
    ds, fit = toy
    kw = {"epochs": 4, "dropout": 0.3}
    p1 = fit_smoothing_posterior(fit, ds, seed=3, **kw).predict(ds).values
    p2 = fit_smoothing_posterior(fit, ds, seed=3, **kw).predict(ds).values
    p3 = fit_smoothing_posterior(fit, ds, seed=4, **kw).predict(ds).values
    np.testing.assert_array_equal(p1, p2)
    assert not np.array_equal(p1, p3)


def test_kernel_span_defaults_to_lag_seconds_in_bins(toy):
    """lags=None: Lf = round(LAG_SECONDS / bin width) bins each side."""
    from disrnn.evaluation.smoothing_config import LAG_SECONDS, SmoothingConfig, default_lags

    ds, fit = toy
    assert default_lags(0.02) == round(LAG_SECONDS / 0.02) and default_lags(None) == 10
    assert default_lags(10.0) == 1 and SmoothingConfig().lags is None
    post = fit_smoothing_posterior(fit, ds, seed=0, epochs=1)
    want = round(LAG_SECONDS / float(ds.attrs["bin_width"]))
    assert post.config.lags == want
    assert post.encoder.phi.shape[-1] == 2 * want + 1


def test_initial_kernel_is_the_stated_mixture_of_exponentials(toy):
    """phi at init = w exp(-|l|/tau_s)/Z_s + (1 - w) exp(-|l|/(Lf/3))/Z_l, written out by
    hand; the posterior converts INIT_TAU_SECONDS to bins of the dataset."""
    from disrnn.evaluation.smoothing_config import INIT_SHORT_WEIGHT, INIT_TAU_SECONDS

    lf, tau, w = 6, 1.5, 0.8
    lag = np.abs(np.arange(-lf, lf + 1))
    short, wide = np.exp(-lag / tau), np.exp(-lag / (lf / 3))
    want = w * short / short.sum() + (1 - w) * wide / wide.sum()
    np.testing.assert_allclose(initial_kernel(lf, tau, w).numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(initial_kernel(lf, tau, 0.0).numpy(), wide / wide.sum(), rtol=1e-6)
    enc = SmoothingEncoder(3, 2, lf, per_latent=True, tau_short=tau, short_weight=w)
    np.testing.assert_allclose(enc.phi.detach().numpy(), np.stack([want, want]), rtol=1e-5)

    ds, fit = toy
    post = fit_smoothing_posterior(fit, ds, seed=0, epochs=1, lr=1e-12, weight_decay=0.0, lags=4)
    bins = INIT_TAU_SECONDS / float(ds.attrs["bin_width"])
    np.testing.assert_allclose(
        post.encoder.phi.detach().numpy()[0],
        initial_kernel(4, bins, INIT_SHORT_WEIGHT).numpy(),
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "bad, message",
    [({"tau_short": 0.0}, "tau_short"), ({"tau_short": float("nan")}, "tau_short"),
     ({"short_weight": 1.5}, "short_weight"), ({"short_weight": -0.1}, "short_weight")],
)  # fmt: skip
def test_smoothing_config_rejects_a_bad_initial_kernel(bad, message):
    from disrnn.evaluation.smoothing_config import SmoothingConfig

    with pytest.raises(ValueError, match=message):
        SmoothingConfig(**bad)


def test_svd_basis_keeps_the_fits_map():
    """T B_c = B_in, T b_c = b, A T = U_K S_K (the SVD of A B_in, by numpy), B_c
    orthonormal; a rank-deficient map gives None."""
    g = torch.Generator().manual_seed(1)
    A, B, b = torch.randn(20, 3, generator=g), torch.randn(3, 12, generator=g), torch.randn(3)
    T, B_c, b_c = svd_basis(A, B, b)
    np.testing.assert_allclose((T @ B_c).numpy(), B.numpy(), atol=1e-5)
    np.testing.assert_allclose((T @ b_c).numpy(), b.numpy(), atol=1e-5)
    np.testing.assert_allclose((B_c @ B_c.T).numpy(), np.eye(3), atol=1e-5)
    U, S, _ = np.linalg.svd(A.double().numpy() @ B.double().numpy())
    np.testing.assert_allclose(np.abs((A @ T).numpy()), np.abs(U[:, :3] * S[:3]), atol=1e-4)
    A0 = A.clone()
    A0[:, 2] = 0.0  # the third latent reaches no unit
    assert svd_basis(A0, B, b) is None


def test_posterior_depends_on_the_fit_only_through_its_map(toy):
    """A fit and the same fit in other latent coordinates (A M, M^-1 B, M^-1 b: the same
    predictions, as lrRNN, LINT and lrRNN+ICA of one fit) get the same posterior
    predictions; in the fit's own coordinates (basis="fit") they do not."""
    import copy

    ds, fit = toy
    M = torch.tensor([[2.0, 0.5, 0.0, 0.0], [0.0, 1.0, 0.3, 0.0],
                      [0.0, 0.0, 0.5, 0.0], [0.4, 0.0, 0.0, 1.5]])  # fmt: skip
    other = copy.deepcopy(fit)
    with torch.no_grad():
        m = other.module
        m.A.copy_(m.A @ M)
        m.B_raw.copy_(torch.linalg.solve(M, m.B_raw))
        m.b.copy_(torch.linalg.solve(M, m.b))
    np.testing.assert_allclose(other.predict(ds).values, fit.predict(ds).values, rtol=1e-4)
    preds = {}
    for basis in ("svd", "fit"):
        for name, f in (("fit", fit), ("other", other)):
            post = fit_smoothing_posterior(f, ds, seed=0, basis=basis, epochs=5, lags=5)
            preds[basis, name] = post.predict(ds).values
    np.testing.assert_allclose(preds["svd", "fit"], preds["svd", "other"], rtol=2e-3, atol=1e-5)
    assert np.abs(preds["fit", "fit"] - preds["fit", "other"]).max() > 1e-2


def test_heldout_readout_starts_at_the_fits_decoder_rows(toy):
    """The refitted readout starts at D = A_ho T, d = a_ho + D o: from the encoder's
    coordinates c it gives the fit decoder's held-out eta of z = T (c + o), o = T^-1 b the
    fit's bias (b_s starts at 0); ``readout="fixed"`` keeps the fit's rows (no readout),
    and both are trained only where refit."""
    from disrnn.evaluation.cosmoothing import _initial
    from disrnn.evaluation.smoothing_config import SmoothingConfig
    from disrnn.models.smoothing import HeldoutReadout

    ds, fit = toy
    ho = ds["heldout"].values.astype(bool)
    _, b0, T, o = _initial(fit, ~ho, SmoothingConfig())
    assert T is not None  # a linear fit: the SVD basis
    A, a, b = fit.module.A.detach(), fit.module.a.detach(), fit.module.b.detach()
    torch.testing.assert_close(T @ o, b, rtol=1e-4, atol=1e-5)
    assert not b0.any()
    readout = HeldoutReadout(A[torch.from_numpy(ho)], a[torch.from_numpy(ho)], T, o)
    c = torch.randn(3, 7, T.shape[0], generator=torch.Generator().manual_seed(0))
    want = (((c + o) @ T.T) @ A.T + a)[..., torch.from_numpy(ho)]
    torch.testing.assert_close(readout(c), want, rtol=1e-5, atol=1e-5)
    refit = fit_smoothing_posterior(fit, ds, seed=0, **SETTINGS)
    fixed = fit_smoothing_posterior(fit, ds, seed=0, readout="fixed", **SETTINGS)
    assert fixed.readout is None and isinstance(refit.readout, HeldoutReadout)
    moved = (refit.readout.D.detach() - readout.D.detach()).abs().max()
    assert moved > 1e-3  # trained
    with pytest.raises(ValueError, match="readout"):
        SmoothingConfig(readout="free")


@pytest.mark.parametrize("lf", [3, 12])  # 12: a kernel wider than the trial
def test_acausal_conv_against_a_loop(lf):
    g = torch.Generator().manual_seed(0)
    p = torch.randn(3, 9, 4, generator=g, dtype=torch.float64)  # (trial, time, channel)
    phi = torch.rand(4, 2 * lf + 1, generator=g, dtype=torch.float64)  # index l + Lf
    expected = torch.zeros_like(p)
    for c in range(4):
        for t in range(9):
            for lag in range(-lf, lf + 1):
                if 0 <= t - lag < 9:  # zero padding at the trial's edges
                    expected[:, t, c] += phi[c, lag + lf] * p[:, t - lag, c]
    # by FFT: float64 rounding
    np.testing.assert_allclose(acausal_conv(p, phi).numpy(), expected.numpy(), atol=1e-12)
    # a shared kernel (one row) is broadcast over channels
    np.testing.assert_allclose(
        acausal_conv(p, phi[0]).numpy(),
        acausal_conv(p, phi[:1].expand(4, -1)).numpy(),
        atol=1e-12,
    )
    # no information crosses trials
    q = p.clone()
    q[1] += 5.0
    out_p, out_q = acausal_conv(p, phi), acausal_conv(q, phi)
    np.testing.assert_array_equal(out_p[[0, 2]].numpy(), out_q[[0, 2]].numpy())


def test_encoder_masked_bins_and_kernel_orientation():
    """phi[:, 0] weighs the future; the kernel is renormalised over the bins inside the
    trial; an unobserved bin's input never reaches the output."""
    enc = SmoothingEncoder(n_in=2, rank=1, lags=2, B=torch.tensor([[1.0, 0.0]]))
    f = torch.zeros(1, 7, 2)
    obs = torch.ones(1, 7)
    f[0, 3, 0] = 1.0
    with torch.no_grad():
        enc.logits.copy_(torch.tensor([[0.0, 1.0, 2.0, 0.5, -1.0]]))  # asymmetric
        z = enc(f, obs)[0, :, 0]
        phi = enc.phi[0]  # lags -2 (future) .. +2 (past)
        # bin 1 sees bin 3 at l = -2 (index 0); its bin t - 2 = -1 lies outside the trial
        assert float(z[1]) == pytest.approx(float(phi[0] / (1 - phi[4])))
        assert float(z[5]) == pytest.approx(float(phi[4] / (1 - phi[0])))
        assert float(z[3]) == pytest.approx(float(phi[2]))
        obs[0, 3] = 0.0  # f keeps its value there
        z2 = enc(f, obs)[0, :, 0]
    assert torch.all(z2 == 0)


def test_coordinated_dropout_hides_every_scored_unit():
    heldin = torch.tensor([True] * 10 + [False] * 3)
    g = torch.Generator().manual_seed(0)
    for p in (0.0, 0.3, 0.9):
        scale, in_loss = coordinated_dropout(50, heldin, p, g)
        assert not ((scale > 0) & in_loss).any()  # no unit is both input and scored
        assert in_loss[:, ~heldin].all() and (scale[:, ~heldin] == 0).all()
        hidden = in_loss[:, heldin].sum(1)
        assert (hidden == min(round(p * 10), 9)).all()
        visible = scale[:, heldin][~in_loss[:, heldin]]
        np.testing.assert_allclose(visible.numpy(), 10 / (10 - int(hidden[0])))
    assert len({tuple(r) for r in in_loss.int().tolist()}) > 1  # a new draw per trial


def test_a_scored_unit_does_not_reach_its_own_prediction(toy):
    """Perturbing a hidden unit's input (every bin) leaves every prediction unchanged."""
    from disrnn.evaluation.cosmoothing import _forward
    from disrnn.evaluation.posterior_data import posterior_tensors as _tensors

    ds, fit = toy
    post = fit_smoothing_posterior(fit, ds, seed=0, epochs=2)
    data = _tensors(ds)
    heldin = torch.from_numpy(~post.heldout)
    idx = torch.arange(4)
    scale, in_loss = coordinated_dropout(4, heldin, 0.3, torch.Generator().manual_seed(1))
    _, eta = _forward(post.encoder, post.decoder, data, idx, heldin, scale)
    for trial in range(4):
        for u in torch.nonzero(in_loss[trial]).flatten()[:3]:
            data2 = dict(data, x=data["x"].clone())
            data2["x"][trial, :, u] += 7.0
            _, eta2 = _forward(post.encoder, post.decoder, data2, idx, heldin, scale)
            torch.testing.assert_close(eta2, eta, rtol=0, atol=0)


def test_masked_bins_do_not_reach_predictions(toy):
    """Changing the counts of unobserved bins (mask / pre_mask False) changes nothing."""
    ds, fit = toy
    post = fit_smoothing_posterior(fit, ds, seed=0, epochs=2)
    mask = np.ones((ds.sizes["trial"], ds.sizes["time"]), bool)
    mask[0, 10:14] = False
    dm = ds.assign(mask=(("trial", "time"), mask))
    act = dm["activity"].values.copy()
    act[0, 10:14] += 3
    pre = dm["pre_activity"].values.copy()
    pre[~dm["pre_mask"].values] += 2
    dm2 = dm.assign(
        activity=(dm["activity"].dims, act), pre_activity=(dm["pre_activity"].dims, pre)
    )
    np.testing.assert_array_equal(post.predict(dm).values, post.predict(dm2).values)
    assert not np.array_equal(post.predict(ds).values, post.predict(dm).values)


def test_errors(toy):
    ds, fit = toy
    with pytest.raises(ValueError, match="--heldout-fraction 0.25"):
        fit_smoothing_posterior(fit, ds.assign_coords(heldout=("unit", np.zeros(30, bool))))
    with pytest.raises(ValueError, match="--heldout-fraction 0.25"):
        fit_smoothing_posterior(fit, ds.drop_vars("heldout"))
    with pytest.raises(ValueError, match="dropout"):
        fit_smoothing_posterior(fit, ds, dropout=1.0)
    with pytest.raises(TypeError):
        fit_smoothing_posterior(fit, ds, not_a_setting=1)
    split = np.where(ds["split"].values == "val", "train", ds["split"].values)
    with pytest.raises(ValueError, match="val"):
        fit_smoothing_posterior(fit, ds.assign_coords(split=("trial", split)))


def test_gaussian_fit_is_rejected(toy):
    ds, fit = toy

    class GaussianFit:
        def __getattr__(self, name):
            return getattr(fit, name)

    g = GaussianFit()
    g.config = type("C", (), {"likelihood": "gaussian"})()
    with pytest.raises(ValueError, match="Poisson"):
        fit_smoothing_posterior(g, ds)


def test_evaluation_reports_the_smoothing_posterior_beside_the_causal_co_bps(toy, tmp_path):
    from disrnn.evaluation import evaluate

    ds, fit = toy
    m = json.loads((evaluate(fit.path, ds, tmp_path / "ev", seed=0) / "metrics.json").read_text())
    post = fit_smoothing_posterior(fit, ds, seed=0)  # the evaluation's defaults and seed
    np.testing.assert_allclose(
        m["co_bps_smoothed"], cosmoothing_metrics(fit, post, ds)["co_bps_smoothed"]
    )
    assert m["co_bps_smoothed"] > m["co_bps"]
    off = evaluate(fit.path, ds, tmp_path / "ev2", seed=0, smoothing_posterior=False)
    assert json.loads((off / "metrics.json").read_text())["co_bps_smoothed"] is None


def test_posterior_behavior_decoding_is_nlbs_ridge_on_its_rates(toy):
    """``behavior_r2_nlb_smoothed``: NLB's ridge (alpha from its grid by 5-fold CV) from the
    posterior's rates of every unit on the training trials' scored bins, R^2 on the test
    trials'; null without a behavior variable."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV

    from disrnn.evaluation.posterior_metrics import smoothing_posterior_metrics
    from disrnn.fit.tensors import valid_bins

    ds, fit = toy
    assert smoothing_posterior_metrics(fit, ds, seed=0)["behavior_r2_nlb_smoothed"] is None
    truth = ds["true_latents"].transpose("trial", "time", "latent").values[..., :2]
    ds = ds.assign(hand=(("trial", "time", "hand_dim"), truth, {"kind": "behavior"}))
    got = smoothing_posterior_metrics(fit, ds, seed=0)["behavior_r2_nlb_smoothed"]["hand"]
    rates = fit_smoothing_posterior(fit, ds, seed=0).predict(ds).values
    ok = valid_bins(ds, int(fit.history))
    split = ds["split"].values.astype(str)
    tr, te = (split == "train")[:, None] & ok, (split == "test")[:, None] & ok
    search = GridSearchCV(Ridge(), {"alpha": np.logspace(-4, 0, 9)}, cv=5)
    want = search.fit(rates[tr], truth[tr]).score(rates[te], truth[te])
    assert got == pytest.approx(want, rel=1e-6)
    assert want > 0.3  # the rates carry the latents that drive them


def _direct_psth_r2(y, pre, pre_mask, rates, labels, scored, valid, sd_bins):
    """NLB's PSTH R^2 by explicit loops: each window bin's target is the Gaussian-weighted
    mean (4 sd reach) of the counts of the observed bins around it, the pre-window bins
    (where ``pre_mask``) included; the target PSTH of a condition is the mean over all its
    trials (``y``, ``labels``: every trial), the predicted one over its ``scored`` trials'
    valid bins (``rates``, ``valid``: the scored trials); R^2 per unit over (condition,
    bin) cells, averaged over units."""
    full, n_pre, h = np.concatenate([pre, y], 1), pre.shape[1], int(np.ceil(4 * sd_bins))
    seen = np.concatenate([pre_mask, np.ones(y.shape[:2], bool)], 1)
    target = np.empty_like(y)
    for i in range(y.shape[0]):
        for t in range(y.shape[1]):
            js = np.arange(max(0, n_pre + t - h), min(full.shape[1], n_pre + t + h + 1))
            js = js[seen[i, js]]
            w = np.exp(-0.5 * ((js - n_pre - t) / sd_bins) ** 2)
            target[i, t] = (w[:, None] * full[i, js]).sum(0) / w.sum()
    pt, pp = [], []
    for c in np.unique(labels[scored]):
        sel = (labels[scored] == c)[:, None] & valid
        n = sel.sum(0)
        keep = n > 0
        pt.append(target[labels == c].mean(0)[keep])
        pp.append(((rates * sel[..., None]).sum(0)[keep]) / n[keep, None])
    pt, pp = np.concatenate(pt), np.concatenate(pp)
    return np.mean(1 - ((pt - pp) ** 2).sum(0) / ((pt - pt.mean(0)) ** 2).sum(0))


def test_evaluation_psth_r2_of_the_causal_and_posterior_rates_is_nlbs(toy):
    """``co_psth_r2`` (one-step rates) and ``co_psth_r2_smoothed`` (the smoothing
    posterior's) against explicit loops, with the pre-window bins as smoothing context."""
    from disrnn.evaluation.evaluate import compute_evaluation
    from disrnn.fit.tensors import valid_bins

    ds, fit = toy
    labels = np.random.default_rng(0).choice(["a", "b"], ds.sizes["trial"])
    ds = ds.assign_coords(condition=("trial", labels))
    # the toy's history bins are unobserved: give the later half of them counts, so the
    # smoothing of the PSTH target reaches into them
    pre = ds["pre_activity"]
    pre_mask = np.zeros(ds["pre_mask"].shape, bool)
    pre_mask[:, pre_mask.shape[1] // 2 :] = True
    counts = np.random.default_rng(1).poisson(0.5, pre.shape) * pre_mask[..., None]
    ds["pre_mask"] = (ds["pre_mask"].dims, pre_mask)
    ds["pre_activity"] = (pre.dims, counts.astype(pre.dtype), pre.attrs)
    m, _ = compute_evaluation(fit, ds, seed=0)
    scored = ds["split"].values.astype(str) == "test"
    dt, ho = ds.isel(trial=np.flatnonzero(scored)), ds["heldout"].values.astype(bool)
    assert "mask" not in ds  # every window bin observed
    pre_mask = ds["pre_mask"].transpose("trial", "pre_time").values
    y = ds["activity"].transpose("trial", "time", "unit").values[..., ho].astype(float)
    pre = ds["pre_activity"].transpose("trial", "pre_time", "unit").values[..., ho].astype(float)
    valid, sd_bins = valid_bins(dt, int(fit.history)), 0.05 / float(ds.attrs["bin_width"])
    post = fit_smoothing_posterior(fit, ds, seed=0)
    for key, model in (("co_psth_r2", fit), ("co_psth_r2_smoothed", post)):
        rates = model.predict(dt).transpose("trial", "time", "unit").values[..., ho]
        want = _direct_psth_r2(y, pre, pre_mask, rates, labels, scored, valid, sd_bins)
        assert m[key] == pytest.approx(want, rel=1e-6, abs=1e-9), key


# ------------------------------------------------------------------ the context path
def _encoders(context):
    """Two encoders with the same kernel and B, b: without and with a context GRU."""
    g = torch.Generator().manual_seed(3)
    B, b = torch.randn(2, 4, generator=g), torch.randn(2, generator=g)
    plain = SmoothingEncoder(4, 2, 3, True, B, b)
    ctx = SmoothingEncoder(4, 2, 3, True, B, b, torch.Generator().manual_seed(0), context=context)
    return plain, ctx


def test_context_path_starts_at_the_kernel_alone():
    """E starts at 0, so an untrained context path adds nothing to c."""
    plain, ctx = _encoders(5)
    assert plain.gru is None and ctx.gru.hidden_size == 5 and ctx.gru.bidirectional
    g = torch.Generator().manual_seed(1)
    f, obs = torch.randn(3, 20, 4, generator=g), (torch.rand(3, 20, generator=g) > 0.2).float()
    with torch.no_grad():
        torch.testing.assert_close(ctx.coords(f, obs), plain.coords(f, obs), rtol=0, atol=0)


def test_context_path_reaches_the_whole_trial_but_not_unobserved_bins():
    """With E != 0, the first bin's input reaches the last bin (beyond the kernel's 3
    lags) and the last bin's the first (the backward direction); an unobserved bin's input
    reaches nothing, and no input crosses trials."""
    _, ctx = _encoders(5)
    with torch.no_grad():
        ctx.context_out.weight.normal_(generator=torch.Generator().manual_seed(2))
        g = torch.Generator().manual_seed(1)
        f, obs = torch.randn(2, 12, 4, generator=g), torch.ones(2, 12)
        obs[0, 6] = 0.0
        c = ctx.coords(f, obs)
        for t_in, t_out in ((0, 11), (11, 0)):
            f2 = f.clone()
            f2[0, t_in] += 1.0
            c2 = ctx.coords(f2, obs)
            assert (c2[0, t_out] - c[0, t_out]).abs().max() > 1e-4
            torch.testing.assert_close(c2[1], c[1], rtol=0, atol=0)
        f3 = f.clone()
        f3[0, 6] += 5.0
        torch.testing.assert_close(ctx.coords(f3, obs), c, rtol=0, atol=0)


def test_context_weights_come_from_the_generator_alone():
    """The same generator seed gives the same GRU weights, in U(-1/sqrt H, 1/sqrt H), and
    building the encoder leaves torch's global random state untouched."""
    state = torch.get_rng_state()
    _, a = _encoders(6)
    _, b = _encoders(6)
    assert torch.equal(torch.get_rng_state(), state)
    for (name, wa), wb in zip(a.gru.named_parameters(), b.gru.parameters(), strict=True):
        assert torch.equal(wa, wb), name
        assert wa.abs().max() <= 1 / np.sqrt(6)


def test_context_stride_steps_over_block_means_and_interpolates_back():
    """With stride r the GRU reads each block's mean of [f obs, obs] (bins past the trial's
    end as unobserved zeros) and E h is interpolated linearly to the bins, block j's value
    at the centre of its r bins (t = j r + (r - 1) / 2), held flat beyond the first and
    last centres. Checked against an explicit loop for r = 3 on 10 bins (4 blocks, the
    last one of a single bin)."""
    g = torch.Generator().manual_seed(3)
    B, b = torch.randn(2, 4, generator=g), torch.randn(2, generator=g)
    plain = SmoothingEncoder(4, 2, 3, True, B, b)
    ctx = SmoothingEncoder(
        4, 2, 3, True, B, b, torch.Generator().manual_seed(0), context=5, context_stride=3
    )
    with torch.no_grad():
        ctx.context_out.weight.normal_(generator=torch.Generator().manual_seed(2))
        ctx.context_out.bias.normal_(generator=torch.Generator().manual_seed(4))
        f, obs = torch.randn(2, 10, 4, generator=g), torch.ones(2, 10)
        obs[1, 4] = 0.0
        got = ctx.coords(f, obs) - plain.coords(f, obs)  # (trial, time, latent)
        x = torch.cat([f * obs[..., None], obs[..., None]], dim=-1)
        blocks = torch.zeros(2, 4, 5)
        for j in range(4):
            for t in range(3 * j, min(3 * j + 3, 10)):
                blocks[:, j] += x[:, t] / 3.0
        e = ctx.context_out(ctx.gru(blocks)[0])  # (trial, block, latent)
        want = torch.zeros(2, 10, 2)
        for t in range(10):
            pos = min(max((t - 1.0) / 3.0, 0.0), 3.0)  # block coordinate of bin t
            j0 = int(np.floor(pos))
            j1, w = min(j0 + 1, 3), pos - j0
            want[:, t] = (1 - w) * e[:, j0] + w * e[:, j1]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="context_stride must be an integer >= 1, got 0"):
        SmoothingEncoder(4, 2, 3, context=5, context_stride=0)


def test_context_stride_comes_from_the_bin_width():
    """r = round(context_bin / bin width), at least 1 (1 when the width is unknown); the
    posterior builds its encoder with it."""
    from disrnn.evaluation.smoothing_config import SmoothingConfig, context_stride

    assert context_stride(0.02, 0.02) == 1
    assert context_stride(0.02, 0.005) == 4
    assert context_stride(0.02, 0.001) == 20
    assert context_stride(0.02, 0.05) == 1
    assert context_stride(0.02, None) == 1
    with pytest.raises(ValueError, match="context_bin must be a positive number of seconds"):
        SmoothingConfig(context_bin=0)


def test_posterior_trains_its_context_path(toy):
    """The default posterior has a context GRU of ``CONTEXT_UNITS`` units and trains its
    readout E; ``context=0`` fits the kernel alone; a negative width is refused; its GRU
    steps over blocks of ``context_stride`` bins."""
    from disrnn.evaluation.smoothing_config import (
        CONTEXT_BIN_SECONDS,
        CONTEXT_UNITS,
        SmoothingConfig,
        context_stride,
    )

    ds, fit = toy
    post = fit_smoothing_posterior(fit, ds, seed=0, dropout=0.1, **SETTINGS)
    assert post.encoder.gru.hidden_size == CONTEXT_UNITS
    assert post.encoder.context_out.weight.abs().max() > 1e-3
    plain = fit_smoothing_posterior(fit, ds, seed=0, dropout=0.1, context=0, **SETTINGS)
    assert plain.encoder.gru is None
    bw = float(ds.attrs["bin_width"])
    assert post.encoder.context_stride == context_stride(CONTEXT_BIN_SECONDS, bw)
    coarse = fit_smoothing_posterior(
        fit, ds, seed=0, dropout=0.1, context_bin=2 * bw, epochs=2, patience=2, lags=5
    )
    assert coarse.encoder.context_stride == 2
    with pytest.raises(ValueError, match="context must be an integer >= 0, got -1"):
        SmoothingConfig(context=-1)
