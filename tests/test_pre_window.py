"""History bins before each window (pre_activity, pre_mask) against independent counts."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr
from helpers.counts import histogram_counts
from nwb_factory import poisson_spikes, write_nwb

from disrnn.data.binning import BinConfig, bin_session
from disrnn.data.io import load_dataset, save_dataset

ALM = (
    Path(__file__).resolve().parent.parent
    / ".."
    / "shared"
    / "data"
    / "000006_sub-anm372904_ses-20170619.nwb"
)


@pytest.fixture
def session(tmp_path):
    """Spikes from 0.1 s on (the recording's start), some exactly on history edges.

    Trial 0 is aligned at 0.7 s with window (-0.25, 1.0): its history bins (bw 0.125,
    pre_window 0.5 -> P = 4) start at -0.05 s, so the first two leave the recording.
    """
    rng = np.random.default_rng(11)
    starts = np.array([0.2, 3.0, 6.0, 9.0, 12.0, 15.0])
    align = starts + 0.5
    spikes = [np.sort(rng.uniform(0.1, 18.0, size=rng.poisson(15 * 18))) for _ in range(3)]
    pre_edges = -0.75 + np.arange(5) * 0.125
    on_edges = (align[1:, None] + pre_edges[None, :]).ravel()  # incl. the window start
    spikes[0] = np.sort(np.concatenate([spikes[0], on_edges]))
    spikes[1] = np.sort(np.concatenate([[0.1], spikes[1]]))  # the earliest spike: 0.1 s
    path = write_nwb(
        tmp_path / "pre.nwb",
        spike_times=spikes,
        unit_ids=[5, 6, 9],
        trials={"start_time": starts, "stop_time": starts + 2.0, "cue_time": align},
    )
    return path, spikes, align


def test_pre_window_counts_equal_independenthistogram_counts(session):
    path, spikes, align = session
    ds = bin_session(path, BinConfig(bin_width=0.125, align="cue_time", window=(-0.25, 1.0)))
    edges = -0.75 + np.arange(5) * 0.125
    assert ds["pre_activity"].dims == ("trial", "pre_time", "unit")
    assert ds["pre_activity"].dtype == np.int32
    assert ds["pre_activity"].attrs["kind"] == "spike_counts"
    assert ds["pre_mask"].dims == ("trial", "pre_time") and ds["pre_mask"].dtype == bool
    np.testing.assert_allclose(ds["pre_time"].values, (edges[:-1] + edges[1:]) / 2)
    assert ds.attrs["pre_window"] == 0.5
    # the recording starts at the first spike, 0.1 s: trial 0's bins from -0.05 and
    # 0.075 s start before it
    mask = np.ones((6, 4), dtype=bool)
    mask[0, :2] = False
    np.testing.assert_array_equal(ds["pre_mask"].values, mask)
    expected = histogram_counts(spikes, align, edges) * mask[:, :, None]
    np.testing.assert_array_equal(ds["pre_activity"].values, expected)
    assert histogram_counts(spikes, align[:1], edges)[0, 1, 1] >= 1  # the 0.1 s spike, masked to 0
    # a spike on an edge counts in the bin starting there; one on the window start is
    # the window's first bin, not history
    assert (ds["pre_activity"].sel(unit=5).values[1:] >= 1).all()
    window = histogram_counts(spikes, align, -0.25 + np.arange(11) * 0.125)
    np.testing.assert_array_equal(ds["activity"].values, window)


def test_pre_window_rounds_down_to_whole_bins(session):
    path, spikes, align = session
    assert BinConfig(bin_width=0.1, pre_window=0.3).n_pre_bins == 3  # 0.3 / 0.1 < 3 in floats
    assert BinConfig(bin_width=0.125, pre_window=0.3).n_pre_bins == 2
    assert BinConfig(bin_width=0.125, pre_window=0.1).n_pre_bins == 0
    ds = bin_session(
        path, BinConfig(bin_width=0.125, align="cue_time", window=(-0.25, 1.0), pre_window=0.3)
    )
    assert ds.sizes["pre_time"] == 2 and ds.attrs["pre_window"] == 0.25
    np.testing.assert_allclose(ds["pre_time"].values, [-0.4375, -0.3125])
    edges = np.array([-0.5, -0.375, -0.25])
    expected = histogram_counts(spikes, align, edges)
    np.testing.assert_array_equal(ds["pre_activity"].values[1:], expected[1:])


@pytest.mark.parametrize("pre_window", [0, 0.1])
def test_no_history_bins_gives_no_pre_variables(session, pre_window):
    path, *_ = session
    config = BinConfig(
        bin_width=0.125, align="cue_time", window=(-0.25, 1.0), pre_window=pre_window
    )
    ds = bin_session(path, config)
    assert "pre_activity" not in ds and "pre_mask" not in ds and "pre_time" not in ds.dims
    assert ds.attrs["pre_window"] == 0.0


@pytest.mark.parametrize("bad", [-0.5, float("inf"), float("nan")])
def test_bad_pre_window_is_rejected(bad):
    with pytest.raises(ValueError, match=r"pre_window must be a finite, non-negative .* got"):
        BinConfig(bin_width=0.1, pre_window=bad)
    with pytest.raises(TypeError, match="pre_window must be a number of seconds"):
        BinConfig(bin_width=0.1, pre_window="half a second")


def test_pre_mask_follows_obs_intervals(tmp_path):
    spikes = [np.arange(0.05, 10, 0.1), np.arange(0.05, 10, 0.2)]
    obs = [[[0.0, 10.0]], [[0.0, 4.0], [6.0, 10.0]]]
    starts = np.array([1.0, 4.5, 7.0])
    path = write_nwb(
        tmp_path / "obs.nwb",
        spike_times=spikes,
        obs_intervals=obs,
        trials={"start_time": starts, "stop_time": starts + 2.0},
    )
    ds = bin_session(path, BinConfig(bin_width=0.5, pre_window=1.0))
    # history of trial 1: [3.5, 4) and [4, 4.5); unit 1 is not observed from 4 s
    assert ds["pre_mask"].values.tolist() == [[True, True], [True, False], [True, True]]
    assert ds["pre_activity"].values[1, 1, 1] == 0
    expected = histogram_counts(spikes, starts, np.array([-1.0, -0.5, 0.0]))
    expected[1, 1, :] = 0  # the whole bin is masked: every unit's count is 0 there
    np.testing.assert_array_equal(ds["pre_activity"].values, expected)
    assert (ds["pre_activity"].values[:, :, 0][ds["pre_mask"].values] == 5).all()


def test_windows_without_trials_mask_the_first_history(tmp_path):
    rng = np.random.default_rng(2)
    spikes = poisson_spikes(rng, 3, 20.0, 8.0)
    path = write_nwb(tmp_path / "w.nwb", spike_times=spikes)
    ds = bin_session(path, BinConfig(bin_width=0.25, window_length=2.0, pre_window=0.75))
    assert ds.sizes["pre_time"] == 3
    mask = ds["pre_mask"].values
    assert not mask[0].any() and mask[1:].all()
    assert (ds["pre_activity"].values[0] == 0).all()
    # consecutive windows: the history is the previous window's last bins
    np.testing.assert_array_equal(ds["pre_activity"].values[1:], ds["activity"].values[:-1, -3:])


def test_pre_variables_round_trip_through_netcdf(session, tmp_path):
    path, *_ = session
    ds = bin_session(path, BinConfig(bin_width=0.125, align="cue_time", window=(-0.25, 1.0)))
    back = load_dataset(save_dataset(ds, tmp_path / "d.nc"))
    xr.testing.assert_identical(ds, back)
    assert back["pre_mask"].dtype == bool and back["pre_activity"].dtype == np.int32


def test_continuous_history_averages_like_the_window_and_masks_missing_samples(tmp_path):
    dt = 0.05
    t = np.concatenate([np.arange(40, 200), np.arange(240, 400)]) * dt + dt / 2  # gap 10-12 s
    x = np.stack([np.sin(t), np.cos(3 * t)], axis=1)
    starts = np.array([2.5, 6.0, 12.5, 16.0])
    path = write_nwb(
        tmp_path / "c.nwb",
        trials={"start_time": starts, "stop_time": starts + 2.0},
        timeseries={"acquisition/lfp": {"data": x, "timestamps": t}},
    )
    ds = bin_session(path, BinConfig(bin_width=0.1, activity="lfp", pre_window=0.8))
    pre = ds["pre_activity"]
    assert pre.dtype == np.float32 and pre.attrs["kind"] == "continuous"
    assert ds.sizes["pre_time"] == 8
    # samples start at 2 s: trial 0's history [1.7, 2.5) has none in its first 3 bins;
    # trial 2's history [11.7, 12.5) lies partly in the 10-12 s gap
    mask = np.ones((4, 8), dtype=bool)
    mask[0, :3] = False
    mask[2, :3] = False
    np.testing.assert_array_equal(ds["pre_mask"].values, mask)
    lo = starts[:, None] + ds["pre_time"].values[None, :] - 0.05  # (trial, pre_time)
    expected = np.zeros((4, 8, 2))
    for i in range(4):
        for k in range(8):
            sel = (t >= lo[i, k]) & (t < lo[i, k] + 0.1)
            if mask[i, k]:
                expected[i, k] = x[sel].mean(axis=0)
    np.testing.assert_allclose(pre.values, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("preset", ["paper-gaussian-ls", "lorenz-thomas"])
def test_simulated_history_matches_its_series(tmp_path, preset):
    simulate_mod = pytest.importorskip("disrnn.simulate")
    sim = simulate_mod.simulate(preset, seed=3, n_trials=6, n_units=8)
    path = simulate_mod.write_nwb(sim, tmp_path / "sim.nwb")
    continuous = sim.kind == "continuous"
    iti = simulate_mod.PRESETS[preset].iti
    n_pre = (
        iti + 4
    )  # the earliest 4 bins reach back into the previous trial, the rest lie in the gap
    config = BinConfig(
        bin_width=sim.bin_width,
        pre_window=n_pre * sim.bin_width,
        activity="continuous_activity" if continuous else None,
    )
    ds = bin_session(path, config)
    assert ds.sizes["pre_time"] == n_pre
    mask = ds["pre_mask"].values
    activity = sim.activity.astype(np.float32) if continuous else sim.activity
    # nothing is recorded before the first trial, nor in the unrecorded inter-trial gap
    assert not mask[0].any()
    assert mask[1:, :4].all() and not mask[1:, 4:].any()
    assert (ds["pre_activity"].values[~mask] == 0).all()
    np.testing.assert_array_equal(ds["pre_activity"].values[1:, :4], activity[:-1, -4:])


@pytest.mark.skipif(
    not ALM.exists(),
    reason=f"real DANDI file absent ({ALM}); it lives in ../shared/data on the project machines",
)
def test_real_alm_history_equals_independenthistogram_counts():
    ds = bin_session(
        ALM, BinConfig(bin_width=0.02, window=(0.0, 6.0), pre_window=0.3, duplicates="keep")
    )
    with h5py.File(ALM, "r") as f:
        flat = f["units/spike_times"][:]
        ends = f["units/spike_times_index"][:]
        starts = f["intervals/trials/start_time"][:]
        trial_ids = f["intervals/trials/id"][:]
    spikes = np.split(flat, ends[:-1])
    assert ds.sizes["pre_time"] == 15 and ds.attrs["pre_window"] == pytest.approx(0.3)
    assert ds["trial"].values.tolist() == trial_ids.tolist()
    edges = -0.3 + np.arange(16) * 0.02
    expected = histogram_counts(spikes, starts, edges)
    # covered: inside the recording, from the earliest of spike and trial times to the
    # latest (stop_time is NaN in this file)
    first = min(flat.min(), starts.min())
    last = max(flat.max(), starts.max())
    lo = starts[:, None] + edges[None, :-1]
    hi = starts[:, None] + edges[None, 1:]
    mask = (lo >= first - 1e-7) & (hi <= last + 1e-7)
    assert not mask[0].any() and mask[1:].all()  # trial 0 starts the recording
    np.testing.assert_array_equal(ds["pre_mask"].values, mask)
    np.testing.assert_array_equal(ds["pre_activity"].values, expected * mask[:, :, None])
    assert expected[1:].sum() > 1000  # the history bins do hold spikes
