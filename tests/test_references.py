"""Reference methods (smoothing, PCA) and condition decoding against independent computations."""

import json

import numpy as np
import pytest
import xarray as xr
from scipy import stats
from sklearn.linear_model import PoissonRegressor
from sklearn.metrics import r2_score

from disrnn.evaluation.decoding import condition_decoding, latent_behavior_r2, running_sum
from disrnn.evaluation.metrics import ridge_decoding_r2
from disrnn.evaluation.pca import pca_reference
from disrnn.evaluation.references import smoothing_reference, write_reference
from disrnn.report.render import fmt
from disrnn.report.results import load_eval

BW = 0.02


def reference_session(
    n_trial=30, n_time=50, n_in=12, n_out=4, kind="spike_counts", latent="smooth", seed=0
):
    """Poisson counts (or Gaussian values) driven by a 2-d latent, with a split, held-out
    units, a condition, one unobserved bin per test trial and a behavior variable.

    Not the shared ``helpers.datasets.toy_dataset``: the smoothing tests need latents of a
    chosen time scale (``latent``: smooth, constant within a trial, or fast) and a
    condition that shifts their phase."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_time) * BW
    cond = np.array(["a", "b"] * (n_trial // 2))
    if latent == "smooth":  # slow oscillation with a condition-dependent phase
        ph = np.where(cond == "a", 0.0, np.pi / 2)[:, None] + 0.3 * rng.standard_normal(
            (n_trial, 1)
        )
        z = np.stack([np.sin(2 * np.pi * 1.0 * t + ph), np.cos(2 * np.pi * 1.0 * t + ph)], -1)
    elif latent == "constant":  # one gain per trial, flat in time
        z = np.repeat(rng.standard_normal((n_trial, 1, 2)), n_time, 1)
    else:  # square wave of period 8 bins: fast
        sq = np.where((np.arange(n_time) // 4) % 2 == 0, 1.0, -1.0)
        z = np.repeat(np.stack([sq, sq], -1)[None], n_trial, 0)
    n_unit = n_in + n_out
    A = rng.standard_normal((n_unit, 2)) * 0.8
    eta = z @ A.T + np.log(0.3)
    if kind == "spike_counts":
        act = rng.poisson(np.exp(eta)).astype(np.int32)
    else:
        act = (eta + 0.2 * rng.standard_normal(eta.shape)).astype(np.float32)
    split = np.array((["train"] * 3 + ["val", "test"]) * n_trial)[:n_trial]
    mask = np.ones((n_trial, n_time), bool)
    mask[split == "test", 7] = False
    heldout = np.zeros(n_unit, bool)
    heldout[n_in:] = True
    return xr.Dataset(
        {
            "activity": (("trial", "time", "unit"), act, {"kind": kind}),
            "mask": (("trial", "time"), mask),
            "hand": (("trial", "time", "hand_dim"), z[..., :1] * 2.0 + 1, {"kind": "behavior"}),
        },
        coords={
            "trial": np.arange(n_trial) + 10,
            "time": t + BW / 2,
            "unit": np.arange(n_unit) + 1,
            "split": ("trial", split),
            "condition": ("trial", cond),
            "heldout": ("unit", heldout),
        },
        attrs={"bin_width": BW, "kind": kind, "source": "test", "sha256": "abc"},
    )


# ------------------------------------------------------------ independent computations
def _direct_smooth(x, observed, sd_bins, causal=False):
    """Renormalised Gaussian smoothing by an explicit loop over bins; causal: of the bins
    t - h .. t - 1 only, NaN where none of them is observed."""
    n_trial, n_time, _ = x.shape
    h = int(np.ceil(4 * sd_bins))
    out = np.full(x.shape, np.nan)
    for i in range(n_trial):
        for t in range(n_time):
            js = np.arange(max(0, t - h), t if causal else min(n_time, t + h + 1))
            js = js[observed[i, js]]
            if js.size:
                w = np.exp(-0.5 * ((js - t) / sd_bins) ** 2)
                out[i, t] = (w[:, None] * x[i, js]).sum(0) / w.sum()
    return out


def _direct_glm_rates(x, f, mask, ho, tr, alpha):
    """(trial, time, held-out) rates of one PoissonRegressor per held-out unit on the
    standardised features f of the training trials' observed bins; NaN where unobserved."""
    a = f[tr][mask[tr]]
    mu, s = a.mean(0), a.std(0)
    rates = np.full((*x.shape[:2], int(ho.sum())), np.nan)
    for j, u in enumerate(np.flatnonzero(ho)):
        glm = PoissonRegressor(alpha=alpha, max_iter=500).fit((a - mu) / s, x[tr][mask[tr]][:, u])
        rates[..., j][mask] = glm.predict((f[mask] - mu) / s)
    return rates


def _direct_smoothing_reference(ds, sd, alpha, causal=False):
    x = ds["activity"].values.astype(float)
    ho = ds["heldout"].values
    mask = ds["mask"].values
    split = ds["split"].values
    tr, te = split == "train", split == "test"
    f = _direct_smooth(x[..., ~ho], mask, sd / BW, causal)
    if causal:  # no earlier observed bin: smoothed counts 0
        f = np.nan_to_num(f, nan=0.0)
    rates = _direct_glm_rates(x, f, mask, ho, tr, alpha)[te]
    y = x[te][..., ho]
    null = x[tr][mask[tr]][:, ho].mean(0)
    ok = mask[te]
    ll = stats.poisson.logpmf(y[ok], rates[ok])
    ll0 = stats.poisson.logpmf(y[ok], np.broadcast_to(null, y[ok].shape))
    co_bps = (ll.sum() - ll0.sum()) / (y[ok].sum() * np.log(2))
    # PSTH R^2: the test trials' condition means of the rates against the condition means
    # of every trial's smoothed held-out spikes (50 ms), as NLB's target PSTHs
    target = _direct_smooth(x[..., ho], mask, 0.05 / BW)
    cond_all = ds["condition"].values
    cond = cond_all[te]
    pt, pp = [], []
    for c in np.unique(cond):
        sel, every = cond == c, cond_all == c
        w, w_all = ok[sel][..., None], mask[every][..., None]
        keep = (w.sum(0)[:, 0] > 0) & (w_all.sum(0)[:, 0] > 0)
        pt.append((target[every] * w_all).sum(0)[keep] / w_all.sum(0)[keep])
        pp.append((np.where(w, rates[sel], 0)).sum(0)[keep] / w.sum(0)[keep])
    psth = r2_score(np.concatenate(pt), np.concatenate(pp))  # mean over units
    return rates, co_bps, ll.mean(), psth


@pytest.fixture(scope="module")
def spikes():
    return reference_session()


def test_smoothing_matches_direct_sklearn(spikes):
    res = smoothing_reference(spikes, kernel_sds=[0.05], alphas=[1e-3])
    rates, co_bps, ll, psth = _direct_smoothing_reference(spikes, 0.05, 1e-3)
    np.testing.assert_allclose(res.rates.values, rates, rtol=1e-6, equal_nan=True)
    m = res.metrics
    assert m["co_bps"] == pytest.approx(co_bps, rel=1e-6)
    assert m["test_ll_heldout_per_bin_neuron"] == pytest.approx(ll, rel=1e-6)
    assert m["co_psth_r2"] == pytest.approx(psth, rel=1e-6)
    assert m["kernel_sd"] == 0.05 and m["glm_alpha"] == 1e-3 and res.cv_scores == {}
    assert m["co_bps"] > 0.05  # the latent is shared: smoothed held-in spikes predict
    # NLB's null: each held-out unit's mean over the scored test bins
    te, ho, ok = spikes["split"].values == "test", spikes["heldout"].values, spikes["mask"].values
    y = spikes["activity"].values.astype(float)[te][..., ho][ok[te]]
    r = rates[ok[te]]
    nlb = (
        stats.poisson.logpmf(y, r).sum()
        - stats.poisson.logpmf(y, np.broadcast_to(y.mean(0), y.shape)).sum()
    ) / (y.sum() * np.log(2))
    assert m["co_bps"] - m["co_bps_null_shift"] == pytest.approx(nlb, rel=1e-6)
    assert np.isnan(res.rates.values[:, 7]).all()  # the unobserved bin is not predicted
    assert m["n_test_bins"] == int(spikes["mask"].values[spikes["split"].values == "test"].sum())
    assert m["pc"] is None and m["J_spectral_radius"] is None and m["method"] == "smoothing"


def test_smoothing_behavior_decoding_is_nlbs_ridge(spikes):
    """NLB's velocity decoding of the smoothing baseline: the rates of every unit (smoothed
    held-in counts, GLM rates of the held-out units) of the training trials -> Ridge with
    alpha from NLB's grid by 5-fold GridSearchCV, R^2 on the test trials' bins."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV

    res = smoothing_reference(spikes, kernel_sds=[0.05], alphas=[1e-3], causal_kernel_sds=None)
    x, ho, mask = (
        spikes["activity"].values.astype(float),
        spikes["heldout"].values,
        spikes["mask"].values,
    )
    split = spikes["split"].values
    tr, te = split == "train", split == "test"
    heldin = _direct_smooth(x[..., ~ho], mask, 0.05 / BW)
    every = np.concatenate([heldin, _direct_glm_rates(x, heldin, mask, ho, tr, 1e-3)], -1)
    y = spikes["hand"].values
    search = GridSearchCV(Ridge(), {"alpha": np.logspace(-4, 0, 9)}, cv=5)
    search.fit(every[tr][mask[tr]], y[tr][mask[tr]])
    r2 = search.score(every[te][mask[te]], y[te][mask[te]])
    assert res.metrics["behavior_r2_nlb"]["hand"] == pytest.approx(r2, rel=1e-6)
    assert r2 > 0.5  # the behavior is the latent that drives every unit
    no_behavior = smoothing_reference(spikes.drop_vars("hand"), kernel_sds=[0.05], alphas=[1e-3],
                                      causal_kernel_sds=None)  # fmt: skip
    assert no_behavior.metrics["behavior_r2_nlb"] is None
    assert no_behavior.metrics["co_bps"] == res.metrics["co_bps"]


def test_causal_smoothing_matches_direct_sklearn(spikes):
    res = smoothing_reference(spikes, kernel_sds=[0.05], alphas=[1e-3], causal_kernel_sds=[0.1])
    rates, co_bps, ll, psth = _direct_smoothing_reference(spikes, 0.1, 1e-3, causal=True)
    np.testing.assert_allclose(res.rates_causal.values, rates, rtol=1e-6, equal_nan=True)
    m = res.metrics
    assert m["co_bps_causal"] == pytest.approx(co_bps, rel=1e-6)
    assert m["test_ll_heldout_per_bin_neuron_causal"] == pytest.approx(ll, rel=1e-6)
    assert m["co_psth_r2_causal"] == pytest.approx(psth, rel=1e-6)
    assert m["kernel_sd_causal"] == 0.1 and m["glm_alpha_causal"] == 1e-3
    # the acausal numbers are those of the acausal reference alone
    alone = smoothing_reference(spikes, kernel_sds=[0.05], alphas=[1e-3], causal_kernel_sds=None)
    assert m["co_bps"] == alone.metrics["co_bps"] and alone.metrics["co_bps_causal"] is None
    assert alone.rates_causal is None and alone.cv_scores_causal == {}


def test_causal_smoothing_never_sees_the_bin_it_predicts(spikes):
    from disrnn.evaluation.spike_smoothing import smooth_spikes

    x = spikes["activity"].values.astype(float)
    obs = np.ones(x.shape[:2], bool)
    bumped = x.copy()
    bumped[:, 20] += 5.0
    a = smooth_spikes(x, obs, 2.0, causal=True)
    b = smooth_spikes(bumped, obs, 2.0, causal=True)
    np.testing.assert_array_equal(a[:, :21], b[:, :21])  # bins up to 20 are unchanged
    assert (b[:, 21] > a[:, 21]).all()  # the next bin sees it
    assert np.isnan(a[:, 0]).all()  # nothing before the first bin without pre_activity


def test_pre_activity_extends_the_smoothing_context(spikes):
    from disrnn.evaluation.spike_smoothing import smooth_spikes

    rng = np.random.default_rng(5)
    n_pre = 6
    pre = rng.poisson(2.0, (spikes.sizes["trial"], n_pre, spikes.sizes["unit"])).astype(np.int32)
    ho = spikes["heldout"].values
    x, mask = spikes["activity"].values, spikes["mask"].values
    # the window's smoothed spikes = loop-smoothing of [pre, window], pre bins dropped
    s = smooth_spikes(x[..., ~ho], mask, 2.5, pre=pre[..., ~ho])
    full = np.concatenate([pre, x], 1)[..., ~ho]
    full_mask = np.concatenate([np.ones((x.shape[0], n_pre), bool), mask], 1)
    np.testing.assert_allclose(s, _direct_smooth(full, full_mask, 2.5)[:, n_pre:], rtol=1e-10)
    s = smooth_spikes(x[..., ~ho], mask, 2.5, pre=pre[..., ~ho], causal=True)
    direct = _direct_smooth(full, full_mask, 2.5, causal=True)[:, n_pre:]
    np.testing.assert_allclose(s, direct, rtol=1e-10)
    assert np.isfinite(s[:, 0]).all()  # the pre bins give the first bin a past
    ds = spikes.assign(pre_activity=(("trial", "pre_time", "unit"), pre))
    with_pre = smoothing_reference(ds, kernel_sds=[0.05], alphas=[1e-3])
    without = smoothing_reference(spikes, kernel_sds=[0.05], alphas=[1e-3])
    assert with_pre.rates.shape == without.rates.shape  # pre bins are never predicted...
    assert with_pre.metrics["n_test_bins"] == without.metrics["n_test_bins"]  # ...or scored
    assert not np.allclose(with_pre.rates.values[:, :2], without.rates.values[:, :2])


def test_cv_picks_the_clearly_best_kernel():
    slow = smoothing_reference(
        reference_session(latent="constant"), kernel_sds=[0.02, 0.2], alphas=[1e-3]
    )
    fast = smoothing_reference(
        reference_session(latent="square"), kernel_sds=[0.02, 0.2], alphas=[1e-3]
    )
    assert slow.metrics["kernel_sd"] == 0.2
    assert fast.metrics["kernel_sd"] == 0.02
    assert set(slow.cv_scores) == {"sd=0.02,alpha=0.001", "sd=0.2,alpha=0.001"}


def test_kernels_below_the_bin_width_are_clipped(spikes):
    res = smoothing_reference(spikes, kernel_sds=[0.005, 0.01], alphas=[1e-3])
    assert res.metrics["kernel_sd"] == BW and res.cv_scores == {}


def test_smoothing_is_deterministic(spikes):
    a = smoothing_reference(spikes, seed=3, kernel_sds=[0.03, 0.08], alphas=[1e-3, 1e-1])
    b = smoothing_reference(spikes, seed=3, kernel_sds=[0.03, 0.08], alphas=[1e-3, 1e-1])
    assert a.cv_scores == b.cv_scores
    np.testing.assert_array_equal(a.rates.values, b.rates.values)
    keys = ("co_bps", "kernel_sd", "glm_alpha", "co_psth_r2")
    assert [a.metrics[k] for k in keys] == [b.metrics[k] for k in keys]


def test_no_heldout_units_raises(spikes):
    ds = spikes.assign_coords(heldout=("unit", np.zeros(spikes.sizes["unit"], bool)))
    with pytest.raises(ValueError, match="held-out and held-in units; the dataset has 0 held-out"):
        smoothing_reference(ds)


def test_bad_inputs_raise(spikes):
    with pytest.raises(ValueError, match="features must be one of"):
        smoothing_reference(spikes, kernel_sds=[0.05], alphas=[1e-3], features="exp")
    with pytest.raises(ValueError, match="spike counts"):
        smoothing_reference(reference_session(kind="continuous"))
    with pytest.raises(ValueError, match="no trial coordinate 'nope'"):
        smoothing_reference(spikes, kernel_sds=[0.05], alphas=[1e-3], condition="nope")


def test_write_reference_folder_reads_as_an_evaluation(spikes, tmp_path):
    res = smoothing_reference(spikes, kernel_sds=[0.05], alphas=[1e-3])
    out = write_reference(res, tmp_path / "evals" / "smoothing" / "seed0")
    m = json.loads((out / "metrics.json").read_text())
    assert m["method"] == "smoothing" and m["co_bps"] == pytest.approx(res.metrics["co_bps"])
    assert m["pc"] is None and m["behavior_r2"] is None and m["sha256"] == "abc"
    with xr.open_dataset(out / "rates.nc", engine="h5netcdf") as nc:
        np.testing.assert_allclose(nc["predicted"].values, res.rates.values, equal_nan=True)
        np.testing.assert_allclose(
            nc["predicted_causal"].values, res.rates_causal.values, equal_nan=True
        )
    assert json.loads((out / "cv_scores_causal.json").read_text()) == res.cv_scores_causal
    r = load_eval(out)
    # reports read NLB's smoothing in the rows of a fit's whole-trial posterior and its
    # causal twin in the rows of a fit's one-step prediction (like with like)
    assert r.method == "smoothing" and r.values["co_bps_smoothed"] == pytest.approx(m["co_bps"])
    assert r.values.get("co_bps") == m.get("co_bps_causal")
    assert r.predicted is not None


# ------------------------------------------------------------------------------- PCA
def test_pca_matches_direct_svd(tmp_path):
    ds = reference_session(kind="continuous")
    res = pca_reference(ds, n_components=2)
    x = ds["activity"].values.astype(float)
    ho, mask, split = ds["heldout"].values, ds["mask"].values, ds["split"].values
    tr, te = split == "train", split == "test"
    xtr = x[tr][mask[tr]][:, ~ho]
    mean = xtr.mean(0)
    evecs = np.linalg.eigh(np.cov(xtr, rowvar=False))[1][:, ::-1][:, :2]  # (held-in, 2)
    z = (x[..., ~ho] - mean) @ evecs
    got = res.latents.values
    for k in range(2):  # same component up to sign
        r = np.corrcoef(got[mask][:, k], z[mask][:, k])[0, 1]
        assert abs(r) == pytest.approx(1.0, abs=1e-8)
    assert np.isnan(got[~mask]).all()
    # reconstruction: held-in by the PCs, held-out by least squares on the training bins
    zt = z[tr][mask[tr]]
    coef = np.linalg.lstsq(np.c_[zt, np.ones(len(zt))], x[tr][mask[tr]][:, ho], rcond=None)[0]
    rec = np.concatenate(
        [
            mean + z @ evecs.T,
            np.c_[z.reshape(-1, 2), np.ones(z[..., 0].size)].reshape(*z.shape[:2], 3) @ coef,
        ],
        -1,
    )
    ok = mask[te]
    yt, pt = x[te][ok], rec[te][ok]
    pooled = 1 - ((yt - pt) ** 2).sum() / ((yt - yt.mean(0)) ** 2).sum()
    assert res.metrics["recon_r2"] == pytest.approx(pooled, rel=1e-8)
    assert res.metrics["recon_r2"] > 0.5
    # behavior: the DisRNN evaluation's ridge protocol on the test bins
    trial_id = np.broadcast_to(np.arange(te.sum())[:, None], ok.shape)[ok]
    want = ridge_decoding_r2(z[te][ok], ds["hand"].values[te][ok], trial_id)
    assert res.metrics["behavior_r2"]["hand"]["all"] == pytest.approx(want, rel=1e-8)
    assert res.metrics["condition_accuracy"] > 0.8  # the condition sets the latent's phase
    # with a fit's history L, the condition is decoded from the bins such a fit scores
    from disrnn.fit.tensors import valid_bins

    late = pca_reference(ds, n_components=2, history=3).metrics
    zz = np.where(valid_bins(ds, 3)[..., None], got, np.nan)
    want = condition_decoding(zz, ds["condition"].values, split, seed=0)
    for key in ("condition_accuracy", "condition_accuracy_time_mean"):
        assert late[key] == pytest.approx(want[key]), key
    out = write_reference(res, tmp_path / "pca")
    r = load_eval(out)
    assert r.method == "pca" and r.latents.shape == got.shape


def test_pca_rejects_too_many_components():
    with pytest.raises(ValueError, match="n_components must be an int in 1..12"):
        pca_reference(reference_session(kind="continuous"), n_components=13)


# -------------------------------------------------------------------------- decoding
def test_condition_decoding_follows_the_label_after_t0():
    rng = np.random.default_rng(0)
    n_trial, n_time, t0 = 120, 20, 10
    labels = rng.integers(0, 2, n_trial)
    z = rng.standard_normal((n_trial, n_time, 3))
    z[:, t0:, 0] += np.where(labels == 1, 3.0, -3.0)[:, None]
    z[:, :2] = np.nan  # history bins of a fit
    split = np.array(["train", "train", "val", "test"] * (n_trial // 4))
    out = condition_decoding(z, labels, split, seed=0)
    acc = out["condition_accuracy_by_time"]
    assert np.isnan(acc[:2]).all()
    assert np.all(acc[t0:] > 0.95)
    assert abs(np.mean(acc[2:t0]) - 0.5) < 0.15
    assert out["condition_accuracy"] > 0.95
    test_labels = labels[split == "test"]
    assert out["condition_chance"] == pytest.approx(
        max(np.mean(test_labels == 0), np.mean(test_labels == 1))
    )
    assert out["condition_accuracy_time_mean"] == pytest.approx(np.nanmean(acc))
    again = condition_decoding(z, labels, split, seed=0)
    np.testing.assert_array_equal(acc, again["condition_accuracy_by_time"])


def test_latent_behavior_r2_reads_a_position_from_velocity_latents():
    """Latents that carry a velocity: their running sum is the position (truth built by
    hand), so it decodes the position almost exactly, where the velocity itself cannot."""
    rng = np.random.default_rng(1)
    n_trial, n_time = 40, 30
    vel = rng.standard_normal((n_trial, n_time, 2)).cumsum(1) * 0.3  # smooth-ish velocity
    ok = np.ones((n_trial, n_time), bool)
    ok[:, :3] = False  # history bins: not scored, not summed
    z = np.concatenate([vel, rng.standard_normal((n_trial, n_time, 1))], -1)
    z[:, :3] = np.nan
    pos = np.where(ok[..., None], vel, 0.0).cumsum(1) + 0.01 * rng.standard_normal(vel.shape)
    out = latent_behavior_r2(z, ok, pos, labels=np.array([0, 0, 1]))
    assert set(out) == {"all", "running_sum", "g0", "g1"}
    assert out["running_sum"] > 0.99 and out["all"] < 0.8
    trial = np.broadcast_to(np.arange(n_trial)[:, None], ok.shape)[ok]
    assert out["all"] == pytest.approx(ridge_decoding_r2(z[ok], pos[ok], trial), rel=1e-12)
    assert out["g1"] < 0.1  # the noise latent alone
    np.testing.assert_allclose(running_sum(z, ok)[:, 3:], np.cumsum(z[:, 3:], 1))
    assert (running_sum(z, ok)[:, :3] == 0).all()
    with pytest.raises(ValueError, match="must share"):
        latent_behavior_r2(z, ok[:, :-1], pos)


def test_condition_decoding_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one label and split per trial"):
        condition_decoding(np.zeros((4, 3, 2)), np.zeros(5), np.array(["train"] * 4))


# ---------------------------------------------------------------------------- report
def _fake_disrnn(root, session, **values):
    d = root / session / "evals" / "DisRNN" / "seed0"
    d.mkdir(parents=True)
    m = {"method": "DisRNN", "seed": 0, "session": session, **values}
    (d / "metrics.json").write_text(json.dumps(m))
    return d


def test_report_shows_references_and_cautions(spikes, tmp_path):
    from disrnn.data.io import save_dataset
    from disrnn.report import render_session_report, render_summary_report
    from disrnn.report.tables import reference_cautions

    path = tmp_path / "toy.nc"
    save_dataset(spikes, path)
    # the acausal reference alone first; its causal twin below
    res = smoothing_reference(path, kernel_sds=[0.05], alphas=[1e-3], causal_kernel_sds=None)
    ref = write_reference(res, tmp_path / "toy" / "evals" / "smoothing" / "seed0")
    co = res.metrics["co_bps"]
    worse = _fake_disrnn(tmp_path / "a", "toy", co_bps=co - 0.05)
    better = _fake_disrnn(tmp_path / "b", "toy", co_bps=co + 0.05)
    sentence = "the latents predict held-out neurons worse than smoothed spikes do"
    assert sentence in reference_cautions([load_eval(ref), load_eval(worse)])[0]
    assert reference_cautions([load_eval(ref), load_eval(better)]) == []
    assert reference_cautions([load_eval(ref)]) == []  # no DisRNN: nothing to compare
    # the whole-trial smoothing posterior is what co-smoothing compares, when present
    rescued = _fake_disrnn(tmp_path / "c", "toy", co_bps=co - 0.05, co_bps_smoothed=co + 0.05)
    assert reference_cautions([load_eval(ref), load_eval(rescued)]) == []
    sunk = _fake_disrnn(tmp_path / "d", "toy", co_bps=co + 0.05, co_bps_smoothed=co - 0.05)
    assert "co_bps_smoothed" in reference_cautions([load_eval(ref), load_eval(sunk)])[0]
    html = render_session_report("toy", path, [ref, worse], tmp_path / "toy.html").read_text()
    assert sentence in html and 'data-method="smoothing"' in html
    # the reference's section says why it has no unit map (it has no latent groups)
    assert "smoothing is a community reference, with no latent groups" in html
    summary = render_summary_report([ref, worse], tmp_path / "index.html").read_text()
    assert sentence in summary and 'data-method="smoothing"' in summary
    ok = render_summary_report([ref, better], tmp_path / "index2.html").read_text()
    assert sentence not in ok
    # the causal smoothing is compared with the causal one-step co-bps, whatever the posterior
    both = smoothing_reference(path, kernel_sds=[0.05], alphas=[1e-3], causal_kernel_sds=[0.1])
    ref2 = load_eval(write_reference(both, tmp_path / "toy2" / "smoothing"))
    co_c, high = both.metrics["co_bps_causal"], max(co, both.metrics["co_bps_causal"]) + 0.1
    low = _fake_disrnn(tmp_path / "e", "toy", co_bps=co_c - 0.05, co_bps_smoothed=high)
    (caution,) = reference_cautions([ref2, load_eval(low)])
    assert "one-step predictions, from which W is read" in caution
    assert f"co_bps {fmt(co_c - 0.05)} vs smoothing co_bps {fmt(co_c)}" in caution
    fine = _fake_disrnn(tmp_path / "f", "toy", co_bps=co_c + 0.05, co_bps_smoothed=high)
    assert reference_cautions([ref2, load_eval(fine)]) == []


def test_pca_caution_compares_behavior_r2(tmp_path):
    from disrnn.report.tables import reference_cautions

    ds = reference_session(kind="continuous")
    pca = write_reference(pca_reference(ds, n_components=2), tmp_path / "toy" / "pca")
    r2 = pca_reference(ds, n_components=2).metrics["behavior_r2"]["hand"]["all"]
    worse = _fake_disrnn(tmp_path, "toy", behavior_r2={"hand": {"all": r2 - 0.1, "g0": 0.0}})
    out = reference_cautions([load_eval(pca), load_eval(worse)])
    assert len(out) == 1 and "explain behavior worse than PCA does" in out[0]
    assert "behavior_r2.hand.all" in out[0]


def test_smoothing_caution_compares_nlb_behavior_decoding(spikes, tmp_path):
    """The smoothing reference's NLB decoding R^2 against DisRNN's: its smoothing
    posterior's where it has one (as co-bps), else its one-step rates'."""
    from disrnn.report.tables import reference_cautions

    res = smoothing_reference(spikes, kernel_sds=[0.05], alphas=[1e-3], causal_kernel_sds=None)
    ref = load_eval(write_reference(res, tmp_path / "toy" / "smoothing"))
    r2, co = res.metrics["behavior_r2_nlb"]["hand"], res.metrics["co_bps"] + 0.1
    sentence = "decode behavior worse than smoothed spikes do"

    def cautions(folder, **values):
        return reference_cautions([ref, load_eval(_fake_disrnn(tmp_path / folder, "toy",
                                                                co_bps=co, **values))])  # fmt: skip

    (out,) = cautions("a", behavior_r2_nlb={"hand": r2 - 0.1})
    assert sentence in out and "behavior_r2_nlb.hand" in out
    assert cautions("b", behavior_r2_nlb={"hand": r2 + 0.1}) == []
    rescued = {"behavior_r2_nlb": {"hand": r2 - 0.1}, "behavior_r2_nlb_smoothed": {"hand": r2}}
    assert cautions("c", **rescued) == []
    sunk = {"behavior_r2_nlb": {"hand": r2 + 0.1}, "behavior_r2_nlb_smoothed": {"hand": 0.0}}
    (out,) = cautions("d", **sunk)
    assert "behavior_r2_nlb_smoothed.hand" in out
    # the summary box's comparison line takes the same number as the caution
    from disrnn.report.summary_box import summary_box

    dis = load_eval(tmp_path / "d" / "toy" / "evals" / "DisRNN" / "seed0")
    lines = [t for _, t in summary_box({"DisRNN": [dis], "smoothing": [ref]})["lines"]]
    (line,) = [t for t in lines if t.startswith("behavior_r2_nlb_smoothed.hand against")]
    assert "DisRNN 0 (behavior_r2_nlb_smoothed.hand)" in line and "DisRNN lower" in line


# ---------------------------------------------------------------- run_reference, CLI
def test_cli_reference_chooses_by_the_dataset_and_matches_the_functions(tmp_path, capsys):
    """``disrnn reference``: smoothing for spike counts with held-out units, PCA for
    continuous data (K from --components); the numbers are those of the functions."""
    from disrnn.cli import main
    from disrnn.data.io import save_dataset
    from disrnn.fit.defaults import default_history
    from disrnn.fit.tensors import valid_bins

    ds = reference_session(n_trial=20, n_time=30)
    spikes = save_dataset(ds, tmp_path / "spikes.nc")
    assert main(["reference", str(spikes), "--out", str(tmp_path / "s"), "--seed", "1"]) == 0
    m = json.loads((tmp_path / "s" / "metrics.json").read_text())
    # scored on the bins of a fit with the default history L (no bins before the window:
    # a trial's first L bins are left out, as the fit leaves them)
    L = default_history("spike_counts", BW)
    assert L > 1 and m["history"] == L
    test = ds.isel(trial=np.flatnonzero(ds["split"].values == "test"))
    assert m["n_test_bins"] == int(valid_bins(test, L).sum()) < int(valid_bins(test, 0).sum())
    want = smoothing_reference(spikes, seed=1, history=L).metrics
    assert m["method"] == "smoothing" and m["session"] == "spikes"
    assert m["co_bps"] == pytest.approx(want["co_bps"]) and m["kernel_sd"] == want["kernel_sd"]
    argv = ["reference", str(spikes), "--out", str(tmp_path / "s0"), "--history", "0"]
    assert main([*argv, "--seed", "1"]) == 0
    m0 = json.loads((tmp_path / "s0" / "metrics.json").read_text())
    assert m0["history"] == 0
    assert m0["co_bps"] == pytest.approx(smoothing_reference(spikes, seed=1).metrics["co_bps"])
    bad = ["reference", str(spikes), "--out", str(tmp_path / "bad"), "--history", "-1"]
    assert main(bad) == 2  # a bad L: one line, status 2
    assert "history must be a whole number of bins >= 0, got -1" in capsys.readouterr().err

    cont = save_dataset(reference_session(kind="continuous"), tmp_path / "cont.nc")
    assert main(["reference", str(cont), "--out", str(tmp_path / "p")]) == 2  # no K
    argv = ["reference", str(cont), "--out", str(tmp_path / "p"), "--components", "2"]
    assert main([*argv, "--condition", "condition"]) == 0
    m = json.loads((tmp_path / "p" / "metrics.json").read_text())
    want = pca_reference(cont, 2, history=1).metrics  # continuous data: L = 1
    assert m["method"] == "pca" and m["n_components"] == 2 and m["history"] == 1
    for key in ("recon_r2", "condition_accuracy", "condition_chance"):
        assert m[key] == pytest.approx(want[key]), key
    # forced smoothing of continuous data is the function's error, one line, status 2
    assert (
        main(["reference", str(cont), "--out", str(tmp_path / "x"), "--method", "smoothing"]) == 2
    )


def test_run_reference_without_heldout_units_falls_back_to_pca_and_records_session(tmp_path):
    from disrnn.evaluation import run_reference

    ds = reference_session(n_trial=20, n_time=30)
    ds = ds.assign_coords(heldout=("unit", np.zeros(ds.sizes["unit"], bool)))
    out = run_reference(ds, tmp_path / "r", n_components=2, session="sess-1")
    m = json.loads((out / "metrics.json").read_text())
    assert m["method"] == "pca" and m["session"] == "sess-1"
    assert load_eval(out).session == "sess-1"
    with pytest.raises(ValueError, match="method must be auto or one of smoothing, pca"):
        run_reference(ds, tmp_path / "q", method="glm")


def test_summary_box_gives_disrnns_co_bps_with_nlbs_null(tmp_path):
    from disrnn.report.summary_box import summary_box

    def box(**values):
        root = tmp_path / str(len(list(tmp_path.iterdir())))
        dis = load_eval(_fake_disrnn(root, "toy", co_bps=0.2, co_bps_smoothed=0.3, **values))
        lines = summary_box({"DisRNN": [dis]})["lines"]
        return [text for label, text in lines if "NLB's null" in text]

    (line,) = box(co_bps_null_shift=0.0523)
    assert "every co-bps on these bins is 0.0523 lower" in line
    assert box(co_bps_null_shift=0.0004) == []  # below the numbers' last digit: no line
    assert box() == []  # an evaluation written before the key existed


def test_report_rows_compare_the_reference_like_with_like(spikes, tmp_path):
    """NLB's (acausal) smoothing sits in the rows of a fit's whole-trial posterior and its
    causal twin in the rows of a fit's one-step prediction: the same cells, the paired
    differences and the summary box compare like with like."""
    from helpers.reports import table_cells

    from disrnn.data.io import save_dataset
    from disrnn.report import render_session_report

    path = save_dataset(spikes, tmp_path / "toy.nc")
    res = smoothing_reference(path, kernel_sds=[0.05], alphas=[1e-3], causal_kernel_sds=[0.1])
    m = res.metrics
    ref = write_reference(res, tmp_path / "toy" / "evals" / "smoothing" / "seed0")
    dis = _fake_disrnn(tmp_path, "toy", co_bps=0.11, co_bps_smoothed=0.33)
    text = render_session_report("toy", path, [ref, dis], tmp_path / "toy.html").read_text()
    cells = table_cells(text, "metrics-table")

    def cell(key, method):
        (c,) = [c for c in cells if c["row-data-key"] == key and c["data-method"] == method]
        return float(c["data-mean"])

    assert cell("co_bps", "smoothing") == pytest.approx(m["co_bps_causal"])
    assert cell("co_bps_smoothed", "smoothing") == pytest.approx(m["co_bps"])
    assert not [c for c in cells if c["row-data-key"] == "co_bps_causal"]
    paired = table_cells(text, "paired-table")
    (d,) = [c for c in paired if c["row-data-key"] == "co_bps_smoothed"]
    assert float(d["data-mean"]) == pytest.approx(m["co_bps"] - 0.33)


def test_summary_box_names_tied_best_baselines(tmp_path):
    """Post-hoc methods predict exactly as their lrRNN does: the best baseline is a tie,
    not whichever float rounding favours."""
    from disrnn.report.summary_box import summary_box

    def run(method, co):
        d = tmp_path / "toy" / "evals" / method / "seed0"
        d.mkdir(parents=True)
        m = {"method": method, "seed": 0, "session": "toy", "co_bps": co}
        (d / "metrics.json").write_text(json.dumps(m))
        return [load_eval(d)]

    runs = {"DisRNN": run("DisRNN", 0.3), "lrRNN": run("lrRNN", 0.3228185070)}
    runs["lrRNN+ICA"] = run("lrRNN+ICA", 0.3228185298)
    runs["bdRNN"] = run("bdRNN", 0.31)
    (line,) = [t for _, t in summary_box(runs)["lines"] if t.startswith("co-bps")]
    assert "best baselines lrRNN, lrRNN+ICA (tied) 0.323 (DisRNN lower by 0.023)" in line
    runs["lrRNN+ICA"] = run("LINT", 0.2)
    (line,) = [t for _, t in summary_box(runs)["lines"] if t.startswith("co-bps")]
    assert "best baseline lrRNN 0.323" in line


def test_summary_box_gives_the_chance_of_condition_decoding(tmp_path):
    from disrnn.report.summary_box import summary_box

    def run(method, **m):
        d = tmp_path / "toy" / "evals" / method / "seed0"
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({"method": method, "seed": 0, **m}))
        return [load_eval(d)]

    runs = {
        "DisRNN": run("DisRNN", condition_accuracy=0.4, test_ll_per_bin_neuron=0.1),
        "pca": run("pca", condition_accuracy=0.5, condition_chance=0.6, n_test_trials=5),
    }
    (line,) = [t for _, t in summary_box(runs)["lines"] if t.startswith("condition_accuracy")]
    assert line.startswith("condition_accuracy against PCA (as many components as DisRNN")
    assert "DisRNN 0.4 (condition_accuracy) vs 0.5 (DisRNN lower by 0.1)" in line
    assert "chance 0.6, the most common condition's share of the 5 test trials" in line
