"""Held-out units by mode (auto / file / random) and the per-unit 'unit-max' rescale."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import xarray as xr
from nwb_factory import poisson_spikes, write_nwb

from disrnn.cli import main
from disrnn.data import splits
from disrnn.data.binning import BinConfig, bin_session
from disrnn.data.io import load_dataset, save_dataset

N_UNITS = 10


def _file(tmp_path, heldout=None, name="h.nwb"):
    rng = np.random.default_rng(7)
    spikes = poisson_spikes(rng, N_UNITS, 12.0, 10.0)
    spikes[3] = np.zeros(0)  # a silent unit
    starts = np.arange(10) * 1.2
    return write_nwb(
        tmp_path / name,
        spike_times=spikes,
        unit_columns=None if heldout is None else {"heldout": list(heldout)},
        trials={"start_time": starts, "stop_time": starts + 1.0},
    )


def _seeded_draw(fraction, seed):
    return splits.heldout_units(N_UNITS, fraction, splits.generators(seed)[1])


MARKED = [i in (1, 4) for i in range(N_UNITS)]


@pytest.mark.parametrize("mode", ["auto", "file"])
def test_a_column_that_marks_units_decides(tmp_path, mode):
    path = _file(tmp_path, heldout=MARKED)
    ds = bin_session(path, BinConfig(bin_width=0.1, heldout=mode, heldout_fraction=0.5))
    assert ds["heldout"].values.tolist() == MARKED
    assert ds.attrs["heldout_source"] == "nwb column" and ds.attrs["heldout_mode"] == mode


def test_auto_falls_back_to_the_seeded_fraction_when_the_column_marks_none(tmp_path, caplog):
    path = _file(tmp_path, heldout=[False] * N_UNITS, name="nlb_test.nwb")
    config = BinConfig(bin_width=0.1, heldout_fraction=0.3, seed=4)
    with caplog.at_level(logging.WARNING, logger="disrnn.data.splits"):
        ds = bin_session(path, config)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("nlb_test.nwb" in m and "marks none of the 10 units" in m for m in warned)
    assert ds["heldout"].sum() == 3
    np.testing.assert_array_equal(ds["heldout"].values, _seeded_draw(0.3, 4))
    assert ds.attrs["heldout_source"] == "random"
    # the same draw as mode 'random'
    rand = bin_session(
        path, BinConfig(bin_width=0.1, heldout_fraction=0.3, seed=4, heldout="random")
    )
    np.testing.assert_array_equal(rand["heldout"].values, ds["heldout"].values)


def test_auto_without_a_column_draws_silently(tmp_path, caplog):
    path = _file(tmp_path)
    with caplog.at_level(logging.WARNING):
        ds = bin_session(path, BinConfig(bin_width=0.1, heldout_fraction=0.2, seed=1))
    assert not [r for r in caplog.records if "heldout" in r.getMessage()]
    np.testing.assert_array_equal(ds["heldout"].values, _seeded_draw(0.2, 1))


def test_file_mode_needs_the_column_and_keeps_an_empty_one(tmp_path, caplog):
    with pytest.raises(ValueError, match="has no 'heldout' unit column"):
        bin_session(_file(tmp_path), BinConfig(bin_width=0.1, heldout="file"))
    path = _file(tmp_path, heldout=[False] * N_UNITS, name="empty.nwb")
    with caplog.at_level(logging.WARNING, logger="disrnn.data.splits"):
        ds = bin_session(path, BinConfig(bin_width=0.1, heldout="file", heldout_fraction=0.5))
    assert not ds["heldout"].values.any()
    assert any("empty.nwb" in r.getMessage() for r in caplog.records)


def test_random_mode_ignores_the_column(tmp_path):
    path = _file(tmp_path, heldout=MARKED)
    ds = bin_session(path, BinConfig(bin_width=0.1, heldout="random", heldout_fraction=0.4, seed=2))
    np.testing.assert_array_equal(ds["heldout"].values, _seeded_draw(0.4, 2))
    assert ds.attrs["heldout_source"] == "random"


def test_bad_heldout_mode_is_rejected():
    with pytest.raises(ValueError, match="heldout must be one of auto, file, random, got 'nlb'"):
        BinConfig(bin_width=0.1, heldout="nlb")


def test_heldout_and_pre_window_through_the_cli(tmp_path):
    path = _file(tmp_path, heldout=MARKED)
    out = tmp_path / "d.nc"
    argv = ["bin", str(path), "--out", str(out), "--bin-width", "0.1"]
    assert (
        main([*argv, "--heldout", "random", "--heldout-fraction", "0.3", "--pre-window", "0.2"])
        == 0
    )
    ds = load_dataset(out)
    assert ds.attrs["heldout_source"] == "random" and ds["heldout"].sum() == 3
    assert ds.sizes["pre_time"] == 2
    assert main([*argv, "--rescale", "unit-max"]) == 0
    ds = load_dataset(out)
    assert ds.attrs["rescale"] == "unit-max" and "scale" in ds.coords


def test_bin_help_shows_the_binconfig_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["bin", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--pre-window SECONDS" in text and "(default 0.5)" in text
    assert "--heldout {auto,file,random}" in text and "(default auto)" in text
    assert "--rescale {none,unit-max}" in text and "(default none)" in text
    assert "(default 0.7 0.15 0.15)" in text


# ------------------------------------------------------------------------------ rescale
def test_unit_max_rescale_divides_by_the_train_maximum(tmp_path):
    path = _file(tmp_path)
    raw = bin_session(path, BinConfig(bin_width=0.1, seed=3))
    ds = bin_session(path, BinConfig(bin_width=0.1, seed=3, rescale="unit-max"))
    counts = raw["activity"].values
    train = raw["split"].values == "train"
    peak = counts[train].max(axis=(0, 1))
    scale = ds["scale"].values
    assert ds["scale"].dims == ("unit",)
    np.testing.assert_array_equal(scale, np.where(peak > 0, peak, 1))
    assert scale[3] == 1.0 and peak[3] == 0  # the silent unit keeps scale 1
    for name in ("activity", "pre_activity"):
        var = ds[name]
        assert var.dtype == np.float32 and var.attrs["kind"] == "continuous"
        np.testing.assert_allclose(var.values * scale, raw[name].values, rtol=1e-6)
        np.testing.assert_array_equal(np.rint(var.values * scale), raw[name].values)
    act = ds["activity"].values
    assert act[train].min() >= 0 and act[train].max() <= 1
    np.testing.assert_array_equal(act[train].max(axis=(0, 1)), (peak > 0).astype(np.float32))
    assert ds.attrs["kind"] == "continuous" and ds.attrs["rescale_trials"] == "train"
    xr.testing.assert_identical(ds, load_dataset(save_dataset(ds, tmp_path / "r.nc")))
    xr.testing.assert_identical(raw, bin_session(path, BinConfig(bin_width=0.1, seed=3)))


def test_rescale_is_for_spike_counts_only():
    with pytest.raises(ValueError, match="does not apply to the continuous TimeSeries 'lfp'"):
        BinConfig(bin_width=0.1, activity="lfp", rescale="unit-max")
    with pytest.raises(ValueError, match="rescale must be None or one of unit-max"):
        BinConfig(bin_width=0.1, rescale="zscore")
