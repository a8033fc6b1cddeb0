"""bin_session against independent computations (np.histogram, explicit averages)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from helpers.counts import histogram_counts
from nwb_factory import poisson_spikes, write_nwb

from disrnn.data.binning import BinConfig, bin_session
from disrnn.data.io import load_dataset, save_dataset


@pytest.fixture
def edge_session(tmp_path):
    """Random spikes plus spikes exactly on bin edges (and on the last edge)."""
    rng = np.random.default_rng(1)
    starts = np.arange(10) * 3.0 + 1.0
    align = starts + 0.5  # 'cue_time'
    spikes = poisson_spikes(rng, 4, 33.0, 12.0)
    bw, window = 0.125, (-0.25, 1.0)
    edges = window[0] + np.arange(11) * bw
    on_edges = (align[:, None] + edges[None, :]).ravel()  # exactly representable
    spikes[0] = np.sort(np.concatenate([spikes[0], on_edges]))
    spikes[2] = np.sort(np.concatenate([spikes[2], align + 0.05 * 7, align - 0.05 * 3]))
    path = write_nwb(
        tmp_path / "edges.nwb",
        spike_times=spikes,
        unit_ids=[3, 7, 11, 20],
        locations=["CA1", "CA1", "AMY", "ACC"],
        trials={
            "start_time": starts,
            "stop_time": starts + 2.0,
            "cue_time": align,
            "condition": np.array(["a", "b"] * 5),
        },
    )
    return path, spikes, align, bw, window


def test_counts_equal_independent_histogram_with_spikes_on_edges(edge_session):
    path, spikes, align, bw, window = edge_session
    ds = bin_session(path, BinConfig(bin_width=bw, align="cue_time", window=window))
    edges = window[0] + np.arange(11) * bw
    assert ds["activity"].dims == ("trial", "time", "unit")
    assert ds["activity"].dtype == np.int32
    assert ds["activity"].attrs["kind"] == "spike_counts"
    np.testing.assert_array_equal(ds["activity"].values, histogram_counts(spikes, align, edges))
    # spikes exactly on an edge fall in the bin that starts there (half-open bins)
    assert (ds["activity"].sel(unit=3).values >= 1).all()
    np.testing.assert_allclose(ds["time"].values, (edges[:-1] + edges[1:]) / 2)
    assert ds["unit"].values.tolist() == [3, 7, 11, 20]
    assert ds["area"].values.tolist() == ["CA1", "CA1", "AMY", "ACC"]
    assert ds["condition"].values.tolist() == ["a", "b"] * 5
    assert ds.attrs["alignment"] == "trials/cue_time"
    assert ds.attrs["window_start"] == -0.25 and ds.attrs["window_end"] == 1.0


def test_generic_bin_width_matcheshistogram_counts(edge_session):
    path, spikes, align, _, _ = edge_session
    ds = bin_session(path, BinConfig(bin_width=0.05, align="cue_time", window=(-0.5, 1.5)))
    edges = -0.5 + np.arange(41) * 0.05
    assert ds.sizes["time"] == 40
    np.testing.assert_array_equal(ds["activity"].values, histogram_counts(spikes, align, edges))


def test_trials_default_to_common_duration(edge_session):
    path, spikes, _, _, _ = edge_session
    ds = bin_session(path, BinConfig(bin_width=0.1))
    starts = np.arange(10) * 3.0 + 1.0
    edges = np.arange(21) * 0.1
    assert ds.sizes["time"] == 20
    assert ds.attrs["alignment"] == "trials/start_time"
    np.testing.assert_array_equal(ds["activity"].values, histogram_counts(spikes, starts, edges))


def test_windows_without_trials(tmp_path):
    rng = np.random.default_rng(2)
    spikes = poisson_spikes(rng, 3, 20.0, 8.0)
    spikes[0] = np.concatenate([[0.0], spikes[0], [19.999]])
    path = write_nwb(tmp_path / "w.nwb", spike_times=spikes)
    ds = bin_session(path, BinConfig(bin_width=0.25, window_length=2.0))
    t0 = min(s[0] for s in spikes)
    t1 = max(s[-1] for s in spikes)
    n = int(np.floor((t1 - t0) / 2.0))
    starts = t0 + np.arange(n) * 2.0
    assert ds.sizes == {"trial": n, "time": 8, "unit": 3, "pre_time": 2}  # 0.5 s of history
    assert ds.attrs["alignment"] == "windows"
    np.testing.assert_array_equal(
        ds["activity"].values, histogram_counts(spikes, starts, np.arange(9) * 0.25)
    )
    np.testing.assert_allclose(ds["start_time"].values, starts)
    assert set(ds["split"].values) <= {"train", "val", "test"}


def test_interval_table_drops_nan_and_outside_trials(tmp_path):
    rng = np.random.default_rng(3)
    spikes = poisson_spikes(rng, 2, 10.0, 20.0)
    align = np.array([0.2, 2.0, np.nan, 5.0, 9.8])
    path = write_nwb(
        tmp_path / "iv.nwb",
        spike_times=spikes,
        intervals={
            "task": {
                "start_time": np.array([0.0, 1.5, 3.0, 4.5, 9.5]),
                "stop_time": np.array([1.0, 2.5, 4.0, 5.5, 10.0]),
                "go_time": align,
            }
        },
    )
    ds = bin_session(
        path, BinConfig(bin_width=0.1, trials="task", align="go_time", window=(-0.5, 0.5))
    )
    assert ds["trial"].values.tolist() == [1, 3]
    dropped = json.loads(ds.attrs["dropped_trials"])
    assert dropped["nan_alignment"] == {"count": 1, "ids": [2]}
    assert dropped["outside_recording"]["count"] == 2
    assert dropped["outside_recording"]["ids"] == [0, 4]
    np.testing.assert_array_equal(
        ds["activity"].values,
        histogram_counts(spikes, align[[1, 3]], -0.5 + np.arange(11) * 0.1),
    )


def test_alignment_times_within_trials_get_a_hint(tmp_path):
    """A task column that holds seconds after each trial's start (as in DANDI 000006's
    files) puts every window outside the recording: the error says so and names the fix;
    session times that merely miss the recording get no such hint."""
    rng = np.random.default_rng(4)
    spikes = [s + 100.0 for s in poisson_spikes(rng, 2, 10.0, 20.0)]  # 100-120 s
    starts = 100.0 + np.arange(4) * 5.0
    intervals = {
        "trials": {
            "start_time": starts,
            "stop_time": starts + 4.0,
            "cue_time": np.array([1.2, 1.5, 1.1, 1.3]),  # within each trial
            "late_time": starts + 60.0,  # session times, after the recording
        }
    }
    path = write_nwb(tmp_path / "rel.nwb", spike_times=spikes, intervals=intervals)
    cfg = dict(bin_width=0.1, trials="trials", window=(0.0, 1.0))
    with pytest.raises(ValueError, match="no trial is left") as err:
        bin_session(path, BinConfig(align="cue_time", **cfg))
    assert "span 1.1-1.5 s, all before the recording starts" in str(err.value)
    assert "align on start_time" in str(err.value)
    with pytest.raises(ValueError, match="no trial is left") as err:
        bin_session(path, BinConfig(align="late_time", **cfg))
    assert "within each trial" not in str(err.value)


def test_obs_intervals_become_mask(tmp_path):
    spikes = [np.arange(0.05, 10, 0.1), np.arange(0.05, 10, 0.2)]
    obs = [[[0.0, 10.0]], [[0.0, 4.0], [6.0, 10.0]]]
    path = write_nwb(
        tmp_path / "obs.nwb",
        spike_times=spikes,
        obs_intervals=obs,
        trials={"start_time": np.array([0.0, 3.0, 6.0]), "stop_time": np.array([2.0, 5.0, 8.0])},
    )
    ds = bin_session(path, BinConfig(bin_width=0.5))
    mask = ds["mask"]
    assert mask.dims == ("trial", "time") and mask.dtype == bool
    # trial 1 spans 3-5 s; unit 1 is not observed in 4-5 s
    assert mask.values[0].all() and mask.values[2].all()
    assert mask.values[1].tolist() == [True, True, False, False]
    assert (ds["activity"].values[1, 2:, 1] == 0).all()
    assert (ds["activity"].values[1, 2:, 0] == 5).all()


def test_unit_filters_are_recorded(tmp_path):
    spikes = [np.arange(0.01, 10, 0.01), np.arange(0.1, 10, 1.0), [], [5.0]]
    path = write_nwb(
        tmp_path / "f.nwb",
        spike_times=spikes,
        trials={"start_time": np.array([0.0, 5.0]), "stop_time": np.array([5.0, 10.0])},
    )
    ds = bin_session(path, BinConfig(bin_width=0.5, min_spikes=1, min_rate=0.5, max_rate=50))
    assert ds["unit"].values.tolist() == [1]
    filters = json.loads(ds.attrs["filters"])
    assert filters["min_spikes"]["removed"] == 1 and filters["min_spikes"]["removed_units"] == [2]
    assert filters["min_rate"]["removed"] == 1 and filters["min_rate"]["removed_units"] == [3]
    assert filters["max_rate"]["removed"] == 1 and filters["max_rate"]["removed_units"] == [0]
    # without filters every unit stays, the empty one with zeros
    ds = bin_session(path, BinConfig(bin_width=0.5))
    assert ds.sizes["unit"] == 4 and int(ds["activity"].sel(unit=2).sum()) == 0
    assert json.loads(ds.attrs["filters"]) == {
        "duplicates": {"value": "drop", "removed": 0, "removed_units": [], "pairs": []}
    }
    ds = bin_session(path, BinConfig(bin_width=0.5, duplicates="keep"))
    assert json.loads(ds.attrs["filters"]) == {}


def _twin_session(tmp_path):
    """Unit 1 repeats 85 % of unit 0's spikes (0.2 ms jitter); units 0 and 2 share a slow
    rate (independent spikes); unit 3 is independent. 40 trials of 2 s."""
    rng = np.random.default_rng(3)
    duration, n_trials = 80.0, 40
    t = np.arange(0, duration, 0.001)
    slow = 15 * (1 + np.sin(2 * np.pi * t / 1.3))  # Hz, shared by units 0 and 2

    def from_rate(rate):
        return t[rng.random(t.size) < rate * 0.001]

    u0 = from_rate(slow)
    u1 = u0[rng.random(u0.size) < 0.85]
    u1 = np.sort(np.clip(u1 + rng.normal(0, 2e-4, u1.size), 0, duration - 1e-6))
    spikes = [u0, u1, from_rate(slow), from_rate(np.full(t.size, 10.0))]
    starts = np.arange(n_trials) * 2.0
    path = write_nwb(
        tmp_path / "twins.nwb",
        spike_times=spikes,
        trials={"start_time": starts, "stop_time": starts + 2.0},
    )
    return path, spikes


def test_a_unit_that_repeats_another_ones_spikes_is_dropped(tmp_path, caplog, monkeypatch):
    from disrnn.data import duplicates
    from disrnn.data.duplicates import duplicate_pairs

    path, spikes = _twin_session(tmp_path)
    ds = bin_session(path, BinConfig(bin_width=0.02, duplicates="keep", pre_window=0))
    x = ds["activity"].values.astype(float)  # (trial, time, unit)
    # independent truth: numpy's Pearson r at lag 0 and with unit v one bin later
    r0 = np.corrcoef(x[..., 0].ravel(), x[..., 1].ravel())[0, 1]
    r_next = np.corrcoef(x[:, :-1, 0].ravel(), x[:, 1:, 1].ravel())[0, 1]
    r_prev = np.corrcoef(x[:, 1:, 0].ravel(), x[:, :-1, 1].ravel())[0, 1]
    ((u, v, got0, got_adj),) = duplicate_pairs(x)
    assert (u, v) == (0, 1) and r0 > 0.8 and max(r_next, r_prev) < 0.2
    assert got0 == pytest.approx(r0, abs=1e-9)
    assert got_adj == pytest.approx(max(r_next, r_prev), abs=1e-9)
    monkeypatch.setattr(duplicates, "CHUNK_VALUES", 300)  # sums over chunks of 1 trial
    ((_, _, chunked0, chunked_adj),) = duplicate_pairs(x)
    assert (chunked0, chunked_adj) == pytest.approx((got0, got_adj), abs=1e-12)
    monkeypatch.undo()
    # the shared slow rate correlates 0 and 2 at every lag alike: not a twin
    assert np.corrcoef(x[..., 0].ravel(), x[..., 2].ravel())[0, 1] > 0.05
    assert ds.sizes["unit"] == 4

    caplog.set_level("WARNING", logger="disrnn.data.binning")
    ds = bin_session(path, BinConfig(bin_width=0.02, pre_window=0.1))
    assert ds["unit"].values.tolist() == [0, 2, 3]  # unit 1 has fewer spikes than its twin
    assert ds["pre_activity"].sizes["unit"] == 3
    pairs = json.loads(ds.attrs["filters"])["duplicates"]["pairs"]
    assert [p[:2] for p in pairs] == [[1, 0]]
    assert "unit 1 (twin of unit 0" in caplog.text and "twins.nwb" in caplog.text
    with pytest.raises(ValueError, match="duplicates must be one of drop, keep, got 'no'"):
        BinConfig(bin_width=0.02, duplicates="no")


def test_behavior_is_averaged_or_interpolated(tmp_path):
    rng = np.random.default_rng(4)
    spikes = poisson_spikes(rng, 2, 10.0, 5.0)
    fine_t = np.arange(1000) * 0.01 + 0.005  # 100 Hz, sample centres
    fine = np.stack([np.sin(fine_t), fine_t], axis=1)
    coarse_t = np.arange(0.0, 10.01, 0.5)  # 2 Hz, coarser than the bins
    path = write_nwb(
        tmp_path / "b.nwb",
        spike_times=spikes,
        trials={"start_time": np.array([1.0, 4.0]), "stop_time": np.array([3.0, 6.0])},
        timeseries={
            "processing/behavior/Position/hand": {"data": fine, "timestamps": fine_t},
            "acquisition/pupil": {"data": coarse_t * 2, "timestamps": coarse_t},
            "processing/other/BehavioralTimeSeries/speed": {"data": np.ones(100), "rate": 10.0},
        },
    )
    ds = bin_session(path, BinConfig(bin_width=0.1, behavior=("hand", "pupil", "speed")))
    assert ds["hand"].dims == ("trial", "time", "hand_dim") and ds.sizes["hand_dim"] == 2
    assert ds["pupil"].dims == ("trial", "time", "pupil_dim") and ds.sizes["pupil_dim"] == 1
    assert ds["hand"].attrs["kind"] == "behavior"
    # explicit average of the 10 samples in the first bin of trial 0 (1.0-1.1 s)
    sel = (fine_t >= 1.0) & (fine_t < 1.1)
    np.testing.assert_allclose(ds["hand"].values[0, 0], fine[sel].mean(axis=0))
    # coarse series: linear interpolation at bin centres (value = 2 * t)
    centres = np.array([1.0, 4.0])[:, None] + ds["time"].values[None, :]
    np.testing.assert_allclose(ds["pupil"].values[:, :, 0], 2 * centres)
    np.testing.assert_allclose(ds["speed"].values, 1.0)
    # behavior_lag 0.25 s: bin t holds the samples of 1.25-1.35 s (the same average,
    # 0.25 s later) and the interpolation at the centres 0.25 s later
    lag = bin_session(path, BinConfig(bin_width=0.1, behavior=("hand", "pupil"), behavior_lag=0.25))
    sel = (fine_t >= 1.25) & (fine_t < 1.35)
    np.testing.assert_allclose(lag["hand"].values[0, 0], fine[sel].mean(axis=0))
    np.testing.assert_allclose(lag["pupil"].values[:, :, 0], 2 * (centres + 0.25))
    assert lag["hand"].attrs["lag"] == 0.25 and ds["hand"].attrs["lag"] == 0.0
    np.testing.assert_array_equal(lag["activity"].values, ds["activity"].values)


def test_dataset_round_trips_through_netcdf(edge_session, tmp_path):
    path, *_ = edge_session
    ds = bin_session(
        path,
        BinConfig(
            bin_width=0.125,
            align="cue_time",
            window=(-0.25, 1.0),
            heldout_fraction=0.5,
            stratify="condition",
            seed=3,
        ),
    )
    out = save_dataset(ds, tmp_path / "out" / "d.nc")
    xr.testing.assert_identical(ds, load_dataset(out))


def test_config_is_not_mutated_and_results_are_deterministic(edge_session):
    path, *_ = edge_session
    config = BinConfig(bin_width=0.125, align="cue_time", window=(-0.25, 1.0), seed=5)
    before = repr(config)
    a = bin_session(path, config)
    b = bin_session(path, config)
    assert repr(config) == before
    xr.testing.assert_identical(a, b)


def test_provenance_from_dandi_sidecar(edge_session):
    import hashlib

    path, *_ = edge_session
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    config = BinConfig(bin_width=0.125, align="cue_time", window=(-0.25, 1.0))
    ds = bin_session(path, config)
    assert ds.attrs["source"] == "local" and ds.attrs["sha256"] == sha
    assert ds.attrs["nwb_path"] == str(path.resolve()) and ds.attrs["dandiset"] == ""
    sidecar = path.with_name(path.name + ".dandi.json")
    sidecar.write_text(
        json.dumps(
            {
                "dandiset": "000207",
                "version": "0.220216.0323",
                "asset_path": "sub-4/sub-4_ses-4_ecephys+image.nwb",
                "api_url": "http://127.0.0.1:8000/api",
                "sha256": sha,
                "size": path.stat().st_size,
            }
        )
    )
    ds = bin_session(path, config)
    assert ds.attrs["source"] == "dandi"
    assert ds.attrs["dandiset"] == "000207"
    assert ds.attrs["dandiset_version"] == "0.220216.0323"
    assert ds.attrs["asset_path"] == "sub-4/sub-4_ses-4_ecephys+image.nwb"
    assert ds.attrs["api_url"] == "http://127.0.0.1:8000/api"
    assert ds.attrs["sha256"] == sha


@pytest.mark.parametrize("preset", ["lorenz-thomas", "paper-gaussian-ls"])
def test_simulated_session_bins_back_to_its_counts_and_truth(tmp_path, preset):
    simulate_mod = pytest.importorskip("disrnn.simulate")
    sim = simulate_mod.simulate(preset, seed=2, n_trials=12, n_units=8)
    path = simulate_mod.write_nwb(sim, tmp_path / "sim.nwb")
    continuous = sim.kind == "continuous"
    config = BinConfig(
        bin_width=sim.bin_width,
        behavior=("behavior",),
        activity="continuous_activity" if continuous else None,
    )
    ds = bin_session(path, config)
    n_trials, n_time, n_units = sim.activity.shape
    assert dict(ds["activity"].sizes) == {"trial": n_trials, "time": n_time, "unit": n_units}
    assert ds["activity"].attrs["kind"] == sim.kind
    if continuous:
        np.testing.assert_array_equal(ds["activity"].values, sim.activity.astype(np.float32))
    else:
        np.testing.assert_array_equal(ds["activity"].values, sim.activity)
        assert set(ds["area"].values) == {"simulated"}
    np.testing.assert_allclose(ds["true_rates"].values, sim.rates, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(ds["true_latents"].values, sim.latents)
    np.testing.assert_array_equal(ds["true_A"].values, sim.A)
    np.testing.assert_array_equal(ds["true_B"].values, sim.B)
    np.testing.assert_array_equal(ds["true_bias"].values, sim.bias)
    np.testing.assert_array_equal(ds["latent_group"].values, sim.latent_group)
    np.testing.assert_array_equal(ds["behavior"].values, sim.behavior)
    np.testing.assert_array_equal(ds["condition"].values, sim.condition)
    np.testing.assert_allclose(ds["start_time"].values, sim.trial_start)
    np.testing.assert_allclose(ds["time"].values, (np.arange(n_time) + 0.5) * sim.bin_width)
    assert "mask" not in ds


def test_condition_names_the_trial_column_of_the_condition_coord(tmp_path):
    """``condition=COL`` copies COL into coord ``condition`` (COL kept, the file's own
    ``condition`` kept as ``trial_condition``); stratify by it; a missing COL is named."""
    rng = np.random.default_rng(4)
    starts = np.arange(12) * 2.0
    types = np.array(["left", "right", "right"] * 4)
    path = write_nwb(
        tmp_path / "typed.nwb",
        spike_times=poisson_spikes(rng, 3, 25.0, 10.0),
        trials={
            "start_time": starts,
            "stop_time": starts + 1.0,
            "type": types,
            "condition": np.array(["x"] * 12),
        },
    )
    ds = bin_session(
        path,
        BinConfig(bin_width=0.1, condition="type", stratify="condition", split=(0.5, 0.25, 0.25)),
    )
    assert ds["condition"].dims == ("trial",)
    np.testing.assert_array_equal(ds["condition"].values.astype(str), types)
    np.testing.assert_array_equal(ds["type"].values.astype(str), types)
    assert set(ds["trial_condition"].values.astype(str)) == {"x"}
    assert ds.attrs["condition_column"] == "type"
    for label in ("left", "right"):  # stratified by the chosen column: both in test
        assert label in set(types[ds["split"].values.astype(str) == "test"])
    plain = bin_session(path, BinConfig(bin_width=0.1))
    assert set(plain["condition"].values.astype(str)) == {"x"}
    with pytest.raises(ValueError, match=r"'kind'.*trial columns: .*type"):
        bin_session(path, BinConfig(bin_width=0.1, condition="kind"))
    with pytest.raises(TypeError, match="condition"):
        BinConfig(bin_width=0.1, condition=3)
    # the CLI's --condition is the same option
    from disrnn.cli import main
    from disrnn.data.io import load_dataset

    out = tmp_path / "typed.nc"
    argv = ["bin", str(path), "--out", str(out), "--bin-width", "0.1", "--condition", "type"]
    assert main(argv) == 0
    np.testing.assert_array_equal(load_dataset(out)["condition"].values.astype(str), types)


def test_disrnn_bin_duplicates_flag(tmp_path):
    from disrnn.cli import main

    path, _ = _twin_session(tmp_path)
    for flag, units in ((["--duplicates", "keep"], [0, 1, 2, 3]), ([], [0, 2, 3])):
        out = tmp_path / f"ds{len(flag)}.nc"
        assert main(["bin", str(path), "--out", str(out), "--bin-width", "0.02", *flag]) == 0
        assert load_dataset(out)["unit"].values.tolist() == units
