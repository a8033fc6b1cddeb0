"""Dataset NetCDF round trip and atomic writes."""

import os

import numpy as np
import pytest
import xarray as xr
from helpers.datasets import toy_dataset

from disrnn._atomic import atomic_dir, atomic_file
from disrnn.data.io import clean_attrs, load_dataset, save_dataset


def _small_dataset() -> xr.Dataset:
    """The toy dataset, small, with a str unit coord and attrs that need cleaning."""
    ds = toy_dataset(n_trials=4, n_time=5, n_units=3, kind="spike_counts")
    ds = ds.assign_coords(area=("unit", ["CA1", "CA1", "AMY"]))
    return ds.assign_attrs(
        clean_attrs({"bin_width": 0.05, "filters": {"min_rate": None}, "flag": True})
    )


def test_netcdf_round_trip_is_identical(tmp_path):
    ds = _small_dataset()
    path = save_dataset(ds, tmp_path / "d.nc")
    back = load_dataset(path)
    xr.testing.assert_identical(ds, back)
    assert back["activity"].dims == ("trial", "time", "unit")
    assert back["activity"].dtype == np.int32


def test_load_missing_dataset_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.nc"):
        load_dataset(tmp_path / "nope.nc")


def test_atomic_file_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_file(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_atomic_dir_replaces_only_when_complete(tmp_path):
    target = tmp_path / "fit"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "a.txt").write_text("2")
            raise RuntimeError("boom")
    assert (target / "a.txt").read_text() == "1"
    assert sorted(os.listdir(tmp_path)) == ["fit"]


def test_unwritable_output_folder_is_a_clear_error(tmp_path):
    # A regular file where the output folder should be cannot be written even by root.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="cannot create the output folder"):
        save_dataset(_small_dataset(), blocker / "sub" / "d.nc")
    assert sorted(os.listdir(tmp_path)) == ["blocker"]


def test_atomic_outputs_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "f.txt") as tmp:
            tmp.write_text("x")
        with atomic_dir(tmp_path / "d") as tmp:
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_log_to_file_captures_logging_stdout_and_stderr(tmp_path):
    import logging
    import sys

    from disrnn.logs import log_to_file

    root = logging.getLogger()
    before = root.handlers[:]
    path = tmp_path / "job.log"
    with log_to_file(path):
        logging.getLogger("disrnn.test").info("a log record")
        print("to stdout")
        print("to stderr", file=sys.stderr)
    text = path.read_text()
    assert "INFO disrnn.test: a log record" in text
    assert "to stdout" in text and "to stderr" in text
    assert root.handlers == before
    with log_to_file(path, append=True):
        print("second")
    added = path.read_text()[len(text) :]
    assert path.read_text().startswith(text) and added.startswith("second\n")


def test_log_to_file_ends_with_the_jobs_cpu_seconds_and_peak_memory(tmp_path):
    import re
    import resource
    import time

    from disrnn.logs import log_to_file

    path = tmp_path / "job.log"
    with log_to_file(path):
        t_end = time.perf_counter() + 0.3
        while time.perf_counter() < t_end:  # 0.3 s of CPU in this process
            pass
        before = time.process_time()
    after = time.process_time()
    last = path.read_text().splitlines()[-1]
    m = re.search(
        r"resources: CPU ([\d.]+) s \(user ([\d.]+) \+ system ([\d.]+)\), peak memory (\d+) MiB",
        last,
    )
    assert m, last
    cpu, user, system, mib = (float(v) for v in m.groups())
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    # this process's own CPU time brackets it (plus what its children used)
    assert before - 0.05 <= cpu <= after + kids.ru_utime + kids.ru_stime + 0.05
    assert cpu == pytest.approx(user + system, abs=0.11)
    # this process's own high-water mark (VmHWM), not one inherited from its parent
    hwm = next(
        int(line.split()[1]) / 1024
        for line in open("/proc/self/status")
        if line.startswith("VmHWM:")
    )
    assert hwm - 1 <= mib <= hwm + 1


def test_log_to_file_peak_memory_is_the_jobs_own_not_its_parents(tmp_path):
    # Snakemake starts a local job from its own process; ru_maxrss would carry the
    # parent's peak over fork and exec, the logged peak must not
    import re
    import subprocess
    import sys

    parent = bytearray(300 * 1024 * 1024)
    parent[::4096] = b"\1" * len(parent[::4096])  # touch every page: 300 MiB resident
    path = tmp_path / "child.log"
    code = f"from disrnn.logs import log_to_file\nwith log_to_file({str(path)!r}):\n    pass\n"
    subprocess.run([sys.executable, "-c", code], check=True)
    mib = int(re.search(r"peak memory (\d+) MiB", path.read_text().splitlines()[-1]).group(1))
    assert 1 <= mib < 200, mib
    del parent
