"""read_session on small NWB files, continuous activity, ground truth, splits."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from nwb_factory import poisson_spikes, write_nwb

from disrnn.data import splits
from disrnn.data.binning import BinConfig, bin_session
from disrnn.data.nwb import read_session


def test_read_units_tables_and_series(tmp_path):
    rng = np.random.default_rng(0)
    spikes = poisson_spikes(rng, 3, 5.0, 4.0)
    path = write_nwb(
        tmp_path / "s.nwb",
        spike_times=spikes,
        unit_ids=[4, 8, 15],
        locations=["M1", "PMd", "M1"],
        unit_columns={"heldout": [False, True, False], "quality": ["good", "mua", "good"]},
        obs_intervals=[[[0.0, 5.0]], [[0.0, 2.0], [3.0, 5.0]], [[1.0, 4.0]]],
        trials={
            "start_time": np.array([0.0, 2.0]),
            "stop_time": np.array([1.0, 3.0]),
            "txt": np.array(["left", "right"]),
            "raw": [b"x1", b"y22"],
        },
        intervals={"task": {"start_time": np.array([0.5]), "stop_time": np.array([6.0])}},
        timeseries={
            "processing/behavior/Position/hand": {"data": np.zeros((10, 2)), "rate": 2.0},
            "acquisition/lick": {"data": np.zeros(5), "timestamps": np.arange(5.0)},
        },
    )
    s = read_session(path, series=("hand",))
    assert s.unit_ids.tolist() == [4, 8, 15]
    for got, want in zip(s.spike_times, spikes, strict=True):
        np.testing.assert_array_equal(got, want)
    assert s.area.tolist() == ["M1", "PMd", "M1"]
    assert s.unit_columns["heldout"].tolist() == [False, True, False]
    assert s.unit_columns["quality"].tolist() == ["good", "mua", "good"]
    assert s.obs_intervals[1].tolist() == [[0.0, 2.0], [3.0, 5.0]]
    assert set(s.tables) == {"trials", "task"}
    trials = s.tables["trials"]
    assert trials.columns["txt"].tolist() == ["left", "right"]
    assert trials.columns["raw"].tolist() == ["x1", "y22"]  # bytes kept as str
    assert trials.columns["raw"].dtype.kind == "U"
    assert s.series_paths["hand"] == ["processing/behavior/Position/hand"]
    assert s.series_paths["lick"] == ["acquisition/lick"]
    hand = s.series["hand"]
    assert hand.data.shape == (10, 2)
    np.testing.assert_allclose(hand.timestamps, np.arange(10) / 2.0)
    assert s.extent[0] == 0.0 and s.extent[1] == 6.0
    assert s.ground_truth is None


def test_heldout_column_decides_and_text_columns_become_coords(tmp_path):
    path = write_nwb(
        tmp_path / "h.nwb",
        spike_times=[[0.1], [0.2], [0.3]],
        unit_columns={"heldout": [True, False, True], "quality": ["a", "b", "c"]},
        trials={
            "start_time": np.array([0.0, 1.0]),
            "stop_time": np.array([1.0, 2.0]),
            "raw": [b"x1", b"y22"],
        },
    )
    ds = bin_session(path, BinConfig(bin_width=0.5, heldout_fraction=0.0))
    assert ds["heldout"].values.tolist() == [True, False, True]
    assert ds["quality"].values.tolist() == ["a", "b", "c"]
    assert ds["raw"].values.tolist() == ["x1", "y22"]
    assert ds.attrs["heldout_source"] == "nwb column"


def test_unsorted_spikes_are_sorted_with_a_warning(tmp_path, caplog):
    path = write_nwb(
        tmp_path / "u.nwb",
        spike_times=[[0.3, 0.1, 0.2], [0.5]],
        unit_ids=[9, 10],
        trials={"start_time": np.array([0.0]), "stop_time": np.array([1.0])},
    )
    with caplog.at_level(logging.WARNING, logger="disrnn.data.nwb"):
        s = read_session(path)
    assert s.spike_times[0].tolist() == [0.1, 0.2, 0.3]
    assert any("unit 9" in r.getMessage() and "sorted" in r.getMessage() for r in caplog.records)
    ds = bin_session(path, BinConfig(bin_width=0.25))
    assert ds["activity"].sel(unit=9).values.tolist() == [[2, 1, 0, 0]]


def test_continuous_activity_with_ground_truth(tmp_path):
    """Gaussian layout: no units, continuous_activity at sample centres, truth module."""
    rng = np.random.default_rng(5)
    dt, n, n_units, k = 0.1, 200, 4, 3
    t = (np.arange(n) + 0.5) * dt
    latents = rng.normal(size=(n, k))
    A, B_T, bias = (
        rng.normal(size=(n_units, k)),
        rng.normal(size=(n_units, k)),
        rng.normal(size=n_units),
    )
    mean = latents @ A.T + bias
    x = mean + 0.1 * rng.normal(size=mean.shape)
    starts = np.arange(4) * 5.0
    path = write_nwb(
        tmp_path / "g.nwb",
        trials={
            "start_time": starts,
            "stop_time": starts + 5.0,
            "condition": np.array(["p", "q", "p", "q"]),
        },
        timeseries={"acquisition/continuous_activity": {"data": x, "timestamps": t}},
        ground_truth={
            "latents": (latents, t),
            "rates": (mean, t),
            "group": np.array([0, 0, 1]),
            "system": np.array(["lorenz", "lorenz", "rotation"]),
            "A": A,
            "B_T": B_T,
            "bias": bias,
        },
    )
    ds = bin_session(path, BinConfig(bin_width=dt, activity="continuous_activity"))
    assert ds.sizes == {"trial": 4, "time": 50, "unit": 4, "latent": 3, "pre_time": 5}
    # the 0.5 s of history are the previous trial's last 5 samples; none before trial 0
    pre = x.reshape(4, 50, 4)[:-1, -5:].astype(np.float32)
    np.testing.assert_array_equal(ds["pre_activity"].values[1:], pre)
    assert ds["pre_mask"].values[1:].all() and not ds["pre_mask"].values[0].any()
    assert ds["activity"].dtype == np.float32 and ds["activity"].attrs["kind"] == "continuous"
    np.testing.assert_allclose(ds["activity"].values, x.reshape(4, 50, 4).astype(np.float32))
    np.testing.assert_allclose(ds["true_latents"].values, latents.reshape(4, 50, 3))
    np.testing.assert_allclose(ds["true_rates"].values, mean.reshape(4, 50, 4))
    np.testing.assert_allclose(ds["true_A"].values, A)
    np.testing.assert_allclose(ds["true_B"].values, B_T.T)
    np.testing.assert_allclose(ds["true_bias"].values, bias)
    assert ds["true_B"].dims == ("latent", "unit") and ds["true_A"].dims == ("unit", "latent")
    assert ds["latent_group"].values.tolist() == [0, 0, 1]
    assert ds["latent_group"].dims == ("latent",)
    # averaging onto bins twice as wide is the mean of pairs of samples
    ds2 = bin_session(path, BinConfig(bin_width=2 * dt, activity="continuous_activity"))
    np.testing.assert_allclose(
        ds2["true_latents"].values, latents.reshape(4, 25, 2, 3).mean(axis=2), rtol=1e-12
    )


def test_spike_ground_truth_rates_are_expected_counts(tmp_path):
    rng = np.random.default_rng(6)
    dt, n, n_units = 0.05, 400, 3
    t = (np.arange(n) + 0.5) * dt
    rates = rng.uniform(1, 30, size=(n, n_units))
    counts = rng.poisson(rates * dt)
    spikes = [
        np.sort(
            np.concatenate(
                [rng.uniform(i * dt, (i + 1) * dt, c) for i, c in enumerate(counts[:, u])]
            )
        )
        for u in range(n_units)
    ]
    starts = np.arange(4) * 5.0
    path = write_nwb(
        tmp_path / "p.nwb",
        spike_times=spikes,
        locations=["simulated"] * n_units,
        trials={"start_time": starts, "stop_time": starts + 5.0, "condition": np.array(["a"] * 4)},
        ground_truth={
            "latents": (rng.normal(size=(n, 2)), t),
            "rates": (rates, t),
            "group": np.array([0, 1]),
            "system": np.array(["x", "y"]),
            "A": rng.normal(size=(n_units, 2)),
            "B_T": rng.normal(size=(n_units, 2)),
            "bias": np.zeros(n_units),
        },
    )
    ds = bin_session(path, BinConfig(bin_width=dt, min_spikes=1))
    np.testing.assert_array_equal(ds["activity"].values, counts.reshape(4, 100, n_units))
    np.testing.assert_allclose(ds["true_rates"].values, (rates * dt).reshape(4, 100, n_units))
    assert ds["area"].values.tolist() == ["simulated"] * n_units


# --------------------------------------------------------------------------------- splits
def test_split_proportions_and_determinism():
    rng_a, _ = splits.generators(7)
    rng_b, _ = splits.generators(7)
    a = splits.split_trials(100, (0.7, 0.15, 0.15), rng_a)
    b = splits.split_trials(100, (0.7, 0.15, 0.15), rng_b)
    np.testing.assert_array_equal(a, b)
    assert [(a == s).sum() for s in splits.SPLITS] == [70, 15, 15]
    c = splits.split_trials(100, (0.7, 0.15, 0.15), splits.generators(8)[0])
    assert not np.array_equal(a, c)


def test_stratified_split_keeps_proportions_per_condition():
    strata = np.array(["a"] * 40 + ["b"] * 20 + ["c"] * 60)
    out = splits.split_trials(120, (0.5, 0.25, 0.25), np.random.default_rng(0), strata)
    for cond, n in (("a", 40), ("b", 20), ("c", 60)):
        sel = out[strata == cond]
        assert [(sel == s).sum() for s in splits.SPLITS] == [n // 2, n // 4, n // 4]


def test_heldout_fraction_is_seeded():
    a = splits.heldout_units(20, 0.25, splits.generators(1)[1])
    b = splits.heldout_units(20, 0.25, splits.generators(1)[1])
    assert a.sum() == 5 and np.array_equal(a, b)
    assert splits.heldout_units(20, 0.0, np.random.default_rng(0)).sum() == 0
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        splits.heldout_units(20, 1.0, np.random.default_rng(0))


def test_stratify_through_bin_session(tmp_path):
    starts = np.arange(40) * 1.0
    path = write_nwb(
        tmp_path / "st.nwb",
        spike_times=[[0.5, 10.5]],
        trials={
            "start_time": starts,
            "stop_time": starts + 1.0,
            "condition": np.array(["x"] * 20 + ["y"] * 20),
        },
    )
    ds = bin_session(path, BinConfig(bin_width=0.5, split=(0.5, 0.25, 0.25), stratify="condition"))
    for cond in ("x", "y"):
        sel = ds["split"].values[ds["condition"].values == cond]
        assert [(sel == s).sum() for s in splits.SPLITS] == [10, 5, 5]
    with pytest.raises(ValueError, match="available: start_time, stop_time, condition"):
        bin_session(path, BinConfig(bin_width=0.5, stratify="nope"))


def test_test_trials_from_a_file_column(tmp_path):
    """An NLB-style ``split`` trial column: its 'val' trials are exactly the test trials,
    the other 15 are split train / val 0.6 : 0.2 (11 and 4 by largest remainder), seeded;
    the file's column is kept as ``trial_split``; a missing column, values that mark
    no trial and a column without values are refused with what the file has."""
    starts = np.arange(40) * 1.0
    labels = np.array(["train", "val"] * 15 + ["val"] * 10)  # 15 train, 25 val
    path = write_nwb(
        tmp_path / "nlb.nwb",
        spike_times=[[0.5, 10.5]],
        trials={"start_time": starts, "stop_time": starts + 1.0, "split": labels},
    )
    cfg = BinConfig(bin_width=0.5, split=(0.6, 0.2, 0.2), test_trials=("split", ["val"]))
    ds = bin_session(path, cfg)
    assert np.array_equal(ds["trial_split"].values.astype(str), labels)
    split = ds["split"].values.astype(str)
    assert np.array_equal(split == "test", labels == "val")
    assert (split == "train").sum() == 11 and (split == "val").sum() == 4
    assert ds.attrs["test_trials"] == "split: val"
    again = bin_session(
        path, BinConfig(**{**cfg.__dict__, "test_trials": {"column": "split", "values": "val"}})
    )
    assert np.array_equal(again["split"].values, ds["split"].values)
    with pytest.raises(ValueError, match="no trial column 'kind'; available: start_time"):
        bin_session(path, BinConfig(bin_width=0.5, test_trials=("kind", ["val"])))
    with pytest.raises(ValueError, match=r"marks no trial .*\(its values: 'train', 'val';"):
        bin_session(path, BinConfig(bin_width=0.5, test_trials=("split", ["test"])))
    with pytest.raises(ValueError, match="marks every trial"):
        bin_session(path, BinConfig(bin_width=0.5, test_trials=("split", ["train", "val"])))
    with pytest.raises(ValueError, match="at least one value of column 'split'"):
        BinConfig(bin_width=0.5, test_trials=("split", []))


def test_nan_strata_form_a_group_of_their_own():
    """Trials whose stratum label is NaN are split among themselves (NaN == NaN is False,
    so a comparison by value would leave them without a split)."""
    strata = np.array([1.0, np.nan, 2.0, np.nan, 1.0, 2.0, np.nan, 1.0] * 5)
    out = splits.split_trials(40, (0.6, 0.2, 0.2), np.random.default_rng(0), strata)
    assert set(out) == set(splits.SPLITS)
    sel = out[np.isnan(strata)]  # 15 NaN trials: 9, 3, 3
    assert [(sel == s).sum() for s in splits.SPLITS] == [9, 3, 3]


def test_numeric_test_trial_values_compare_as_numbers():
    cols = {"t": np.array([1.0, 2.0, 2.5]), "kind": np.array(["a", "b", "1.0"])}
    assert splits.marked_trials(cols, "t", ("2.50",), "f").tolist() == [False, False, True]
    assert splits.marked_trials(cols, "kind", ("1.0",), "f").tolist() == [False, False, True]
    with pytest.raises(ValueError, match="compared as text, or as numbers"):
        splits.marked_trials(cols, "t", ("x",), "f")


def test_split_around_test_keeps_the_ratio_per_stratum():
    marked = np.zeros(100, bool)
    marked[::4] = True  # 25 test trials
    strata = np.array(["a", "b"] * 50)
    out = splits.split_around_test(marked, (0.5, 0.25, 0.25), np.random.default_rng(0), strata)
    assert np.array_equal(out == "test", marked)
    # the rest 2 : 1 per stratum, largest remainder: 25 -> 17 + 8, 50 -> 33 + 17
    for cond, (n_train, n_val) in (("a", (17, 8)), ("b", (33, 17))):
        rest = out[(strata == cond) & ~marked]
        assert [(rest == "train").sum(), (rest == "val").sum()] == [n_train, n_val]
    again = splits.split_around_test(marked, (0.5, 0.25, 0.25), np.random.default_rng(0), strata)
    assert np.array_equal(out, again)


def test_series_conversion_and_ambiguous_names(tmp_path):
    raw = np.arange(20, dtype=np.int16)
    path = write_nwb(
        tmp_path / "c.nwb",
        spike_times=[[0.5]],
        timeseries={
            "acquisition/lfp": {"data": raw, "rate": 10.0, "conversion": 0.5, "offset": 1.0},
            "processing/a/BehavioralTimeSeries/speed": {"data": np.ones(5), "rate": 1.0},
            "processing/b/BehavioralTimeSeries/speed": {"data": np.zeros(5), "rate": 1.0},
        },
    )
    s = read_session(path, series=("lfp", "processing/b/BehavioralTimeSeries/speed"))
    np.testing.assert_allclose(s.series["lfp"].data[:, 0], raw * 0.5 + 1.0)
    assert s.series["processing/b/BehavioralTimeSeries/speed"].data.sum() == 0
    with pytest.raises(ValueError, match="several TimeSeries named 'speed'"):
        read_session(path, series=("speed",))
