"""Issue 2, section 6: each bad input gets a clear error and leaves no output behind.

Every failing case runs ``disrnn bin`` through ``disrnn.cli.main`` and checks the
one-line message on stderr, the exit status 2 and that the output folder holds nothing
(no dataset, no temporary file).
"""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
from nwb_factory import poisson_spikes, write_nwb

from disrnn.cli import main
from disrnn.data.binning import BinConfig, bin_session
from disrnn.data.io import load_dataset
from disrnn.data.nwb import read_session

TRIALS = {"start_time": np.array([0.0, 2.0, 4.0]), "stop_time": np.array([1.0, 3.0, 5.0])}


@pytest.fixture
def good(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    return write_nwb(
        tmp_path / "in" / "good.nwb",
        spike_times=poisson_spikes(rng, 3, 6.0, 5.0),
        trials={**TRIALS, "go_time": np.array([0.5, 2.5, 4.5])},
        timeseries={"processing/behavior/Position/hand": {"data": np.zeros((60, 2)), "rate": 10.0}},
    )


def _fails(tmp_path, capsys, nwb, *options, match: str | list[str]):
    """Run `disrnn bin` expecting failure; return stderr. Asserts nothing is left behind."""
    out_dir = tmp_path / "out"
    out_dir.mkdir(exist_ok=True)
    argv = ["bin", str(nwb), "--out", str(out_dir / "d.nc"), *options]
    if "--bin-width" not in options:
        argv += ["--bin-width", "0.1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("disrnn bin: error: ")
    for text in [match] if isinstance(match, str) else match:
        assert text in err, err
    assert os.listdir(out_dir) == [], "a failed run left files in the output folder"
    return err


def test_not_an_nwb_file(tmp_path, capsys):
    text = tmp_path / "notes.nwb"
    text.write_text("this is not HDF5\n")
    _fails(tmp_path, capsys, text, match=["notes.nwb", "not an NWB file"])
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.arange(3)
    _fails(tmp_path, capsys, plain, match=["plain.h5", "not NWB"])
    _fails(tmp_path, capsys, tmp_path / "missing.nwb", match="no NWB file at")


def test_truncated_file(tmp_path, capsys, good):
    data = good.read_bytes()
    cut = tmp_path / "cut.nwb"
    cut.write_bytes(data[: len(data) // 2])
    _fails(tmp_path, capsys, cut, match=["cut.nwb", "truncated or not NWB"])
    with pytest.raises(ValueError, match="cut.nwb"):
        read_session(cut)


def test_no_units_table(tmp_path, capsys):
    path = write_nwb(
        tmp_path / "nounits.nwb",
        trials=TRIALS,
        timeseries={"acquisition/continuous_activity": {"data": np.zeros((50, 2)), "rate": 10.0}},
    )
    _fails(tmp_path, capsys, path, match=["no Units table", "--activity", "continuous_activity"])


def test_unit_with_no_spikes_is_kept_with_zeros(tmp_path):
    path = write_nwb(
        tmp_path / "empty.nwb", spike_times=[[0.5, 2.5], []], unit_ids=[1, 2], trials=TRIALS
    )
    out = tmp_path / "out" / "d.nc"
    assert main(["bin", str(path), "--out", str(out), "--bin-width", "0.5"]) == 0
    ds = load_dataset(out)
    assert ds["unit"].values.tolist() == [1, 2]
    assert int(ds["activity"].sel(unit=2).sum()) == 0
    assert int(ds["activity"].sel(unit=1).sum()) == 2


@pytest.mark.parametrize(
    ("spikes", "message"),
    [
        ([[0.1, np.nan, 0.5], [0.2]], "unit 7 has 1 NaN or infinite spike times"),
        ([[0.1, 0.5], [-0.2, 0.3]], "unit 8 has negative spike times"),
    ],
)
def test_nan_and_negative_spike_times(tmp_path, capsys, spikes, message):
    path = write_nwb(tmp_path / "bad.nwb", spike_times=spikes, unit_ids=[7, 8], trials=TRIALS)
    _fails(tmp_path, capsys, path, match=[message, "finite, non-negative"])


def test_unsorted_spike_times_are_sorted(tmp_path, caplog):
    path = write_nwb(
        tmp_path / "uns.nwb", spike_times=[[2.5, 0.5, 0.7]], unit_ids=[5], trials=TRIALS
    )
    out = tmp_path / "out" / "d.nc"
    assert main(["bin", str(path), "--out", str(out), "--bin-width", "0.5"]) == 0
    assert "spike times were not sorted in 1 of 1 units (unit 5)" in caplog.text
    assert load_dataset(out)["activity"].values[:, :, 0].tolist() == [[0, 2], [0, 1], [0, 0]]


def test_text_and_bytes_trial_columns_are_strings(tmp_path):
    path = write_nwb(
        tmp_path / "txt.nwb",
        spike_times=[[0.5]],
        trials={**TRIALS, "label": np.array(["a", "b", "c"]), "raw": [b"x", b"yy", b"zzz"]},
    )
    out = tmp_path / "out" / "d.nc"
    assert main(["bin", str(path), "--out", str(out), "--bin-width", "0.5"]) == 0
    ds = load_dataset(out)
    assert ds["label"].values.tolist() == ["a", "b", "c"]
    assert ds["raw"].values.tolist() == ["x", "yy", "zzz"]
    assert all(isinstance(v, str) for v in ds["raw"].values.tolist())


def test_missing_alignment_column_lists_columns(tmp_path, capsys, good):
    _fails(
        tmp_path,
        capsys,
        good,
        "--align",
        "move_onset_time",
        "--window",
        "0",
        "0.5",
        match=["no column 'move_onset_time'", "available columns: start_time, stop_time, go_time"],
    )
    _fails(
        tmp_path,
        capsys,
        good,
        "--trials",
        "nope",
        "--window",
        "0",
        "0.5",
        match=["no interval table 'nope'", "available tables: trials"],
    )


def test_test_trials_flag(tmp_path, capsys, good):
    """--test-trials COLUMN VALUE: the marked trial is the test trial; a column the file
    lacks, a value no trial has, or no value at all stop with what to give instead."""
    out = tmp_path / "t.nc"
    argv = ["bin", str(good), "--out", str(out), "--bin-width", "0.1", "--split", "0.5", "0.5",
            "0"]  # fmt: skip
    assert main(argv) == 2  # a test fraction of 0 alone leaves no test trials ...
    assert "leaves no test trials" in capsys.readouterr().err
    assert main([*argv, "--test-trials", "go_time", "2.5"]) == 0  # ... marked ones are given
    ds = load_dataset(out)
    split = ds["split"].values.astype(str)
    assert split[1] == "test" and sorted(split[[0, 2]]) == ["train", "val"]
    assert ds.attrs["test_trials"] == "go_time: 2.5"
    _fails(tmp_path, capsys, good, "--test-trials", "split", "val",
           match=["no trial column 'split'", "available: start_time, stop_time, go_time"])  # fmt: skip
    _fails(tmp_path, capsys, good, "--test-trials", "go_time", "9",
           match=["marks no trial of the 3 kept trials", "'0.5', '2.5', '4.5'"])  # fmt: skip
    _fails(tmp_path, capsys, good, "--test-trials", "go_time", match="at least one value")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--bin-width", "0"], "bin_width must be a positive number of seconds, got 0.0"),
        (["--bin-width", "-0.05"], "bin_width must be a positive number of seconds, got -0.05"),
        (
            ["--bin-width", "0.1", "--window", "0.5", "0.5"],
            "window start must be before its end, got (0.5, 0.5)",
        ),
        (["--bin-width", "0.1", "--window", "0.5", "-0.5"], "window start must be before its end"),
        (
            ["--bin-width", "2", "--window", "0", "1"],
            "bin_width 2.0 s is longer than the window (0.0, 1.0)",
        ),
        (["--bin-width", "0.1", "--window", "0", "100"], "is longer than the data"),
        (
            ["--bin-width", "0.1", "--window-length", "100"],
            "window_length 100.0 s is longer than the data",
        ),
        (
            ["--bin-width", "0.1", "--window-length", "-1"],
            "window_length must be positive seconds, got -1.0",
        ),
        (
            ["--bin-width", "0.1", "--window-length", "0"],
            "window_length must be positive seconds, got 0.0",
        ),
        (["--bin-width", "50"], "bin_width 50.0 s is longer than the trials"),
    ],
)
def test_bad_window_or_bin_width(tmp_path, capsys, good, options, message):
    _fails(tmp_path, capsys, good, *options, match=message)


def test_unknown_behavior_lists_what_exists(tmp_path, capsys, good):
    _fails(
        tmp_path,
        capsys,
        good,
        "--behavior",
        "hand_vel",
        match=["no TimeSeries named 'hand_vel'", "TimeSeries in the file: hand"],
    )


def test_every_unit_filtered_out_says_which_filter(tmp_path, capsys, good):
    _fails(
        tmp_path,
        capsys,
        good,
        "--min-spikes",
        "2",
        "--min-rate",
        "1000",
        match=[
            "removed every one of the 3 units",
            "min_spikes 2 removed 0",
            "min_rate 1000.0 removed 3",
        ],
    )
    with pytest.raises(ValueError, match="max_rate 0.0 removed 3"):
        bin_session(good, BinConfig(bin_width=0.1, max_rate=0.0))


def test_unwritable_output_folder(tmp_path, capsys, good):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be")
    assert main(["bin", str(good), "--out", str(blocker / "d.nc"), "--bin-width", "0.1"]) == 2
    assert "cannot create the output folder" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["in", "out"]
    assert blocker.read_text().startswith("a file")


def test_bad_config_values_are_rejected():
    with pytest.raises(ValueError, match="heldout_fraction must be in"):
        BinConfig(bin_width=0.1, heldout_fraction=1.0)
    with pytest.raises(ValueError, match="summing to 1"):
        BinConfig(bin_width=0.1, split=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="non-negative"):
        BinConfig(bin_width=0.1, split=(1.2, -0.1, -0.1))
    with pytest.raises(ValueError, match="do not combine"):
        BinConfig(bin_width=0.1, window_length=2.0, trials="trials")
    with pytest.raises(ValueError, match="min_rate 5.0 Hz is above max_rate 1.0 Hz"):
        BinConfig(bin_width=0.1, min_rate=5.0, max_rate=1.0)
    with pytest.raises(TypeError, match="bin_width must be a number"):
        BinConfig(bin_width="fast")
