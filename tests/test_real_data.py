"""The real DANDI file in ../shared/data: binned counts against h5py + np.histogram."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from disrnn.cli import main
from disrnn.data.binning import BinConfig, bin_session
from disrnn.data.io import load_dataset

REAL = (
    Path(__file__).resolve().parent.parent
    / ".."
    / "shared"
    / "data"
    / "sub-4_ses-4_ecephys+image.nwb"
)
SHA256 = "1f6d811347d83d9693ce824bded9d73f5c88d8542e78069211da52381153f046"

pytestmark = pytest.mark.skipif(
    not REAL.exists(),
    reason=f"real DANDI file absent ({REAL}); it lives in ../shared/data on the project machines",
)


def _read_raw(path: Path):
    """Spike times, unit ids, areas and the recognition table with h5py only."""
    with h5py.File(path, "r") as f:
        flat = f["units/spike_times"][:]
        ends = f["units/spike_times_index"][:]
        ids = f["units/id"][:]
        starts = np.concatenate([[0], ends[:-1]])
        spikes = [flat[s:e] for s, e in zip(starts, ends, strict=True)]
        rows = f["units/electrodes"][:]
        locations = f["general/extracellular_ephys/electrodes/location"][:]
        areas = [loc.decode() if isinstance(loc, bytes) else loc for loc in locations[rows]]
        table = f["intervals/recognition_table"]
        align = table["fixcross_time"][:]
        trial_ids = table["id"][:]
    return spikes, ids, areas, align, trial_ids


@pytest.fixture(scope="module")
def real_dataset():
    config = BinConfig(
        bin_width=0.05,
        trials="recognition_table",
        align="fixcross_time",
        window=(-0.5, 1.5),
        allow_overlap=True,  # 4 pairs of these windows overlap (tests/test_silent.py)
    )
    return bin_session(REAL, config)


def test_real_file_counts_equal_independent_histogram(real_dataset):
    ds = real_dataset
    assert ds["activity"].shape == (180, 40, 35)
    spikes, ids, areas, align, trial_ids = _read_raw(REAL)
    edges = -0.5 + np.arange(41) * 0.05
    expected = np.zeros((180, 40, 35), dtype=np.int64)
    for u, s in enumerate(spikes):
        for t, a in enumerate(align):
            rel = s - a
            expected[t, :, u] = np.histogram(rel[rel < edges[-1]], bins=edges)[0]
    np.testing.assert_array_equal(ds["activity"].values, expected)
    assert expected.sum() > 1000  # the windows do hold spikes
    assert ds["unit"].values.tolist() == ids.tolist()
    assert ds["trial"].values.tolist() == trial_ids.tolist()
    assert ds["area"].values.tolist() == areas
    assert set(ds["area"].values) == {"hippocampus_right", "amygdala_right"}
    for column in ("fixcross_time", "stimuli_type", "old_new", "accuracy", "frameName"):
        assert column in ds.coords and ds[column].dims == ("trial",)
    np.testing.assert_array_equal(ds["fixcross_time"].values, align)
    assert ds["frameName"].dtype.kind == "U"
    assert ds.attrs["sha256"] == SHA256
    assert ds.attrs["alignment"] == "recognition_table/fixcross_time"
    assert json.loads(ds.attrs["dropped_trials"])["outside_recording"]["count"] == 0


def test_real_file_through_the_cli(tmp_path, capsys, real_dataset):
    out = tmp_path / "out" / "real.nc"
    argv = [
        "bin",
        str(REAL),
        "--out",
        str(out),
        "--bin-width",
        "0.05",
        "--trials",
        "recognition_table",
        "--align",
        "fixcross_time",
        "--window",
        "-0.5",
        "1.5",
        "--allow-overlap",
    ]
    assert main(argv) == 0
    ds = load_dataset(out)
    assert dict(ds.sizes) == {"trial": 180, "time": 40, "unit": 35, "pre_time": 10}
    xr.testing.assert_identical(ds, real_dataset)  # the NetCDF round trip loses nothing
    assert os.listdir(out.parent) == ["real.nc"]
    assert "trial=180, time=40, unit=35" in capsys.readouterr().out


def test_real_file_windows_and_filters(tmp_path):
    ds = bin_session(
        REAL,
        BinConfig(bin_width=0.1, window_length=10.0, min_rate=1.0, heldout_fraction=0.2, seed=1),
    )
    assert ds.sizes["time"] == 100 and ds.sizes["trial"] == 282
    filters = json.loads(ds.attrs["filters"])
    assert filters["min_rate"]["removed"] == 35 - ds.sizes["unit"]
    rates = ds["activity"].sum(("trial", "time")) / (ds.sizes["trial"] * 10.0)
    assert (rates >= 1.0).all()
    assert ds["heldout"].sum() == round(0.2 * ds.sizes["unit"])


def test_real_file_without_trials_asks_for_them():
    with pytest.raises(
        ValueError, match="encoding_table, recognition_table, timediscrimination_table"
    ):
        bin_session(REAL, BinConfig(bin_width=0.05))
    with pytest.raises(ValueError, match="differ in duration"):
        bin_session(REAL, BinConfig(bin_width=0.05, trials="recognition_table"))
