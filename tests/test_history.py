"""History bins held before each window (``pre_activity``) and the spike-count defaults.

The independent truth: a dataset whose first P bins are moved into ``pre_activity`` must
give, on its window bins, exactly what the full dataset gives on the same bins.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers.datasets import toy_dataset

from disrnn.fit import FitConfig, fit, load_fit
from disrnn.fit.tensors import first_bin, lagged_stack, trial_arrays, valid_bins

P = 6  # bins moved before the window


def _split_off_history(full: xr.Dataset, n_pre: int) -> xr.Dataset:
    """The window = full bins n_pre.., with bins ..n_pre as pre_activity (all observed)."""
    ds = full.isel(time=slice(n_pre, None))
    pre = full["activity"].isel(time=slice(0, n_pre)).rename(time="pre_time")
    pre = pre.assign_coords(pre_time=full["time"].values[:n_pre] - full["time"].values[n_pre])
    mask = xr.DataArray(np.ones(pre.shape[:2], bool), dims=("trial", "pre_time"))
    return ds.assign(pre_activity=pre, pre_mask=mask)


@pytest.fixture(scope="module")
def spikes():
    return toy_dataset(kind="spike_counts", n_trials=24, n_time=40, n_units=12, n_heldout=3)


@pytest.fixture(scope="module")
def hist_fit(spikes, tmp_path_factory):
    cfg = FitConfig.create("DisRNN", groups=(2, 2), epochs=3, history=4, kernel="learned")
    out = tmp_path_factory.mktemp("hist") / "f"
    return load_fit(fit(_split_off_history(spikes, P), cfg, out, progress=False))


def test_every_window_bin_is_scored_with_enough_history(spikes):
    ds = _split_off_history(spikes, P)
    assert first_bin(ds, 4) == 0 and valid_bins(ds, 4).all()
    assert first_bin(ds, 9) == 9 - P  # more history than held: the first 3 bins wait
    ok = valid_bins(ds, 9)
    assert not ok[:, : 9 - P].any() and ok[:, 9 - P :].all()


def test_unobserved_history_bins_are_not_scored(spikes):
    ds = _split_off_history(spikes, P)
    pm = ds["pre_mask"].values.copy()
    pm[0, -1] = False  # the bin just before trial 0's window is not covered
    ds = ds.assign(pre_mask=(("trial", "pre_time"), pm))
    ok = valid_bins(ds, 4)
    assert not ok[0, :4].any() and ok[0, 4:].all() and ok[1:].all()


def test_history_arrays_equal_those_of_the_full_trial(spikes):
    L = 4
    full = trial_arrays(spikes, L)  # window bins L.. of the full trial
    part = trial_arrays(_split_off_history(spikes, P), L)  # window bins 0.. = full bins P..
    np.testing.assert_array_equal(
        lagged_stack(part["th"], L), lagged_stack(full["th"], L)[:, P - L :]
    )
    np.testing.assert_array_equal(part["x"], full["x"][:, P - L :])
    assert part["start"] == 0 and full["start"] == L


def test_predict_and_latents_use_the_held_history(hist_fit, spikes):
    ds = _split_off_history(spikes, P)
    pred, pred_full = hist_fit.predict(ds).values, hist_fit.predict(spikes).values
    assert np.isfinite(pred).all()  # no history-only bins left
    np.testing.assert_allclose(pred, pred_full[:, P:], rtol=1e-5, atol=1e-6)
    lat, lat_full = hist_fit.latents(ds).values, hist_fit.latents(spikes).values
    np.testing.assert_allclose(lat, lat_full[:, P:], rtol=1e-5, atol=1e-6)


def test_predict_is_the_low_rank_rnn_step_with_a_learned_kernel(hist_fit, spikes):
    """fit.predict == softplus(W h_t + bias), h_t = sum_l psi_l tanh(x_{t-l}) by hand."""
    ds = _split_off_history(spikes, P)
    frame = np.concatenate([ds["pre_activity"].values, ds["activity"].values], axis=1).astype(float)
    psi = hist_fit.module.kernel.psi.detach().double().numpy()
    n_t = ds.sizes["time"]
    h = sum(psi[lag - 1] * np.tanh(frame[:, P - lag : P - lag + n_t]) for lag in range(1, 5))
    want = np.logaddexp(0, h @ hist_fit.W.T + hist_fit.bias)
    np.testing.assert_allclose(hist_fit.predict(ds).values, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(hist_fit.W, hist_fit.A @ hist_fit.B)


def test_rollout_from_the_window_start_equals_the_full_trial_rollout(hist_fit, spikes):
    ds = _split_off_history(spikes, P)
    r = hist_fit.rollout(ds, n_steps=10, start=0).values
    r_full = hist_fit.rollout(spikes, n_steps=10, start=P).values
    np.testing.assert_allclose(r, r_full, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="start must be between"):
        hist_fit.rollout(spikes, n_steps=3, start=2)  # no held history: start >= L = 4


def test_rollout_step_by_step_equals_unrolled_loop(hist_fit, spikes):
    """Feeding back means by hand through the kernel equals fit.rollout (L > 1, held bins)."""
    import torch

    ds = _split_off_history(spikes, P)
    m = hist_fit.module
    frame = np.concatenate([ds["pre_activity"].values, ds["activity"].values], axis=1)
    buf = list(np.tanh(frame[:, P - 4 : P].astype(np.float32)).transpose(1, 0, 2))  # oldest first
    out = []
    with torch.no_grad():
        for _ in range(6):
            lagged = torch.from_numpy(np.stack(buf[::-1], axis=1))  # (trial, L, unit), l = 1 first
            x = m.mean(m.decode(m.encode(m.kernel(lagged)))).numpy()
            out.append(x)
            buf = buf[1:] + [np.tanh(x)]
    np.testing.assert_allclose(
        hist_fit.rollout(ds, n_steps=6, start=0).values, np.stack(out, 1), rtol=1e-5, atol=1e-6
    )


def test_spike_counts_default_to_a_learned_history_of_about_200_ms():
    cfg = FitConfig.create("DisRNN").resolve("spike_counts", 0.02)
    assert (cfg.history, cfg.kernel, cfg.sigma_scale) == (10, "learned", 0.25)
    assert FitConfig.create("DisRNN").resolve("spike_counts", 0.05).history == 4
    cont = FitConfig.create("DisRNN").resolve("continuous", 0.02)
    assert (cont.history, cont.kernel, cont.sigma_scale) == (1, "fixed", 1.0)
    given = FitConfig.create("DisRNN", history=3, kernel="fixed").resolve("spike_counts", 0.02)
    assert (given.history, given.kernel) == (3, "fixed")
    with pytest.raises(ValueError, match="bin_width"):
        FitConfig.create("DisRNN").resolve("spike_counts", -0.02)
    with pytest.raises(ValueError, match="sigma_scale"):
        FitConfig.create("DisRNN", sigma_scale=-1.0)


def test_the_kl_weight_is_the_bin_width_over_20_ms_for_spike_counts():
    """The KL is paid per second of recording: weight bin width / 0.02 s for spikes."""
    weight = [
        FitConfig.create("lrRNN").resolve("spike_counts", bw).kl_weight
        for bw in (0.005, 0.02, 0.05)
    ]
    np.testing.assert_allclose(weight, [0.25, 1.0, 2.5])
    assert FitConfig.create("lrRNN").resolve("spike_counts", None).kl_weight == 1.0
    assert FitConfig.create("DisRNN").resolve("continuous", 0.005).kl_weight == 1.0
    assert FitConfig.create("lrRNN", kl_weight=0.7).resolve("spike_counts", 0.005).kl_weight == 0.7
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="kl_weight"):
            FitConfig.create("lrRNN", kl_weight=bad)
    # a config written before the option: every fit then had weight 1
    old = FitConfig.create("lrRNN").to_dict()
    del old["kl_weight"]
    assert FitConfig.from_dict(old).kl_weight == 1.0


def test_a_5_ms_fit_weighs_its_kl_by_a_quarter_alone_and_in_a_stack(spikes, tmp_path):
    """losses.csv: total = NLL + 0.25 KL at 5 ms bins (lrRNN: beta = 0), for a lone fit
    and for two seeds trained as one stack; a DisRNN refuses a start of another weight."""
    import pandas as pd

    from disrnn.fit.train import fit_seeds

    fine = spikes.assign_attrs(bin_width=0.005)
    cfg = FitConfig.create("lrRNN", groups=(4,), epochs=2, history=4)
    lone = fit(fine, cfg, tmp_path / "lone", progress=False)
    stack = fit_seeds(fine, cfg, [tmp_path / "s0", tmp_path / "s1"], [0, 1], progress=False)
    for out in (lone, *stack):
        assert load_fit(out).config.kl_weight == 0.25
        loss = pd.read_csv(out / "losses.csv")
        np.testing.assert_allclose(loss.total, loss.nll + 0.25 * loss.kl, rtol=1e-5)
        assert (loss.kl > 0).all()
    dis = FitConfig.create("DisRNN", groups=(2, 2), epochs=1, history=4, kl_weight=1.0)
    with pytest.raises(ValueError, match="kl_weight"):
        fit(fine, dis, tmp_path / "dis", init_from=lone, progress=False)


def test_a_default_spike_fit_records_its_resolved_history(spikes, tmp_path):
    f = load_fit(fit(spikes, FitConfig.create("lrRNN", epochs=1), tmp_path / "f", progress=False))
    assert f.history == 10 and f.config.kernel == "learned"  # toy bins are 20 ms
    rule = np.exp(-np.log(f.info["n_train_bins"]) / (6 + 4))
    np.testing.assert_allclose(f.sigma_q, 0.25 * rule, rtol=1e-5)
