"""``--out`` never destroys data (disrnn._outputs.check_output), one test per subcommand.

Each subcommand refuses an existing output that is not a previous output of its own
kind (naming it, leaving it untouched), replaces one that is, replaces anything with
``--force``, and always refuses an output that is one of its inputs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from dandi_stub import DandiStub, quiet_dandi_client
from helpers.reports import fake_dataset, write_fake_eval
from nwb_factory import poisson_spikes, write_nwb

from disrnn._outputs import check_output
from disrnn.cli import main
from disrnn.data.io import load_dataset, save_dataset

TRIALS = {"start_time": np.array([0.0, 2.0, 4.0]), "stop_time": np.array([1.0, 3.0, 5.0])}


def _snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder`` (the truth that nothing changed)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _refused(capsys, argv: list[str], *names: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    for name in names:
        assert name in err, err
    return err


@pytest.fixture
def data_dir(tmp_path, toy_dataset):
    """A user's folder: a dataset, a recording and notes (what `fit --out` once wiped);
    a copy of the dataset is ``tmp_path / "d.nc"``."""
    d = tmp_path / "data"
    d.mkdir()
    ds = toy_dataset(n_trials=12, n_time=20, n_units=6)
    save_dataset(ds, d / "d.nc")
    save_dataset(ds, tmp_path / "d.nc")
    write_nwb(d / "s.nwb", spike_times=poisson_spikes(np.random.default_rng(0), 3, 6.0, 5.0),
              trials=TRIALS)  # fmt: skip
    (d / "notes.txt").write_text("do not lose me\n")
    return d


def _fit_argv(dataset: Path, out: Path, *extra: str) -> list[str]:
    return ["fit", str(dataset), "--method", "lrRNN", "--groups", "2", "--epochs", "1",
            "--no-progress", "--out", str(out), *extra]  # fmt: skip


def test_fit_out_never_destroys_data(data_dir, tmp_path, capsys):
    before = _snapshot(data_dir)
    # the folder that holds the dataset: refused, even with --force
    _refused(capsys, _fit_argv(data_dir / "d.nc", data_dir, "--force"), "holds the input")
    dataset = tmp_path / "d.nc"
    err = _refused(capsys, _fit_argv(dataset, data_dir), str(data_dir), "--force")
    assert "notes.txt" in err and "not a previous fit folder" in err
    assert _snapshot(data_dir) == before
    fit_dir = tmp_path / "fit"
    assert main(_fit_argv(dataset, fit_dir)) == 0
    first = (fit_dir / "fit_info.json").read_text()
    assert main(_fit_argv(dataset, fit_dir)) == 0  # a previous fit is replaced
    assert (fit_dir / "fit_info.json").read_text() != first  # (its timings differ)
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.txt").write_text("x")
    assert main(_fit_argv(dataset, other, "--force")) == 0
    assert not (other / "x.txt").exists() and (other / "weights.pt").is_file()
    # a previous fit folder that holds the input is refused too
    save_dataset(load_dataset(dataset), fit_dir / "d.nc")
    _refused(capsys, _fit_argv(fit_dir / "d.nc", fit_dir), "holds the input")
    assert (fit_dir / "d.nc").is_file()


def test_evaluate_out_never_destroys_data(data_dir, tmp_path, capsys):
    fit_dir = tmp_path / "fit"
    assert main(_fit_argv(tmp_path / "d.nc", fit_dir)) == 0
    capsys.readouterr()
    fit_files = _snapshot(fit_dir)
    ev = ["evaluate", str(fit_dir), str(tmp_path / "d.nc"), "--out"]
    _refused(capsys, [*ev, str(data_dir)], str(data_dir), "not a previous evaluation folder")
    _refused(capsys, [*ev, str(fit_dir), "--force"], "is the input")  # the fit itself
    _refused(capsys, [*ev, str(tmp_path / "d.nc")], "is the input")
    assert _snapshot(fit_dir) == fit_files and (data_dir / "notes.txt").is_file()
    previous = tmp_path / "eval"
    previous.mkdir()
    (previous / "metrics.json").write_text("{}")  # a previous evaluation is replaced
    assert main([*ev, str(previous)]) == 0
    assert json.loads((previous / "metrics.json").read_text())["method"] == "lrRNN"


def test_reference_out_never_destroys_data(data_dir, tmp_path, capsys):
    ref = ["reference", str(tmp_path / "d.nc"), "--components", "2", "--out"]
    before = _snapshot(data_dir)
    _refused(capsys, [*ref, str(data_dir)], str(data_dir), "not a previous evaluation folder")
    assert _snapshot(data_dir) == before
    out = tmp_path / "ref"
    assert main([*ref, str(out)]) == 0
    assert main([*ref, str(out)]) == 0  # its own previous output
    assert json.loads((out / "metrics.json").read_text())["method"] == "pca"


def test_bin_out_never_destroys_data(data_dir, capsys):
    nwb = data_dir / "s.nwb"
    before = _snapshot(data_dir)
    argv = ["bin", str(nwb), "--bin-width", "0.5", "--out"]
    _refused(capsys, [*argv, str(nwb), "--force"], "is the input", str(nwb))
    _refused(capsys, [*argv, str(data_dir / "notes.txt")], "notes.txt", "binned dataset")
    _refused(capsys, [*argv, str(data_dir)], "a folder")
    assert _snapshot(data_dir) == before
    assert main([*argv, str(data_dir / "d.nc")]) == 0  # a previous dataset is replaced
    assert load_dataset(data_dir / "d.nc").sizes["trial"] == 3
    assert main([*argv, str(data_dir / "notes.txt"), "--force"]) == 0
    assert load_dataset(data_dir / "notes.txt").sizes["trial"] == 3


def test_simulate_out_never_destroys_a_recording(data_dir, tmp_path, capsys):
    argv = ["simulate", "--preset", "lorenz-thomas", "--n-trials", "4", "--n-units", "6", "--out"]
    recording = data_dir / "s.nwb"  # an NWB file without ground truth: not a simulation
    before = _snapshot(data_dir)
    _refused(capsys, [*argv, str(recording)], str(recording), "simulated NWB session")
    _refused(capsys, [*argv, str(data_dir / "d.nc")], "d.nc")
    assert _snapshot(data_dir) == before
    out = tmp_path / "sim.nwb"
    assert main([*argv, str(out)]) == 0
    assert main([*argv, str(out), "--seed", "1"]) == 0  # a previous simulation is replaced


def test_report_out_never_destroys_data(tmp_path, capsys):
    ds = fake_dataset(np.random.default_rng(0))
    dpath = save_dataset(ds, tmp_path / "dataset.nc")
    ev = write_fake_eval(tmp_path / "results", "s", "DisRNN", 0, ds)
    notes = tmp_path / "notes.html"
    notes.write_text("<html>my notes</html>")
    session = ["report", "session", "--dataset", str(dpath), "--evals", str(ev),
               "--session", "s", "--out"]  # fmt: skip
    summary = ["report", "summary", "--evals", str(ev), "--out"]
    _refused(capsys, [*session, str(dpath), "--force"], "is the input")
    _refused(capsys, [*summary, str(ev / "metrics.json")], "disrnn HTML report")
    _refused(capsys, [*summary, str(notes)], str(notes), "disrnn HTML report")
    assert notes.read_text() == "<html>my notes</html>"
    out = tmp_path / "index.html"
    assert main([*summary, str(out)]) == 0
    assert main([*summary, str(out)]) == 0  # recognised as a disrnn report
    assert main([*summary, str(notes), "--force"]) == 0
    assert "my notes" not in notes.read_text()


def test_fetch_out_never_destroys_a_file_that_is_not_a_download(tmp_path, capsys, monkeypatch):
    quiet_dandi_client(monkeypatch)
    asset = b"the asset's bytes" * 10
    with DandiStub(files={"sub-1/a.nwb": asset}) as stub:
        argv = ["fetch", "--dandiset", "000207", "--path", "sub-1/a.nwb",
                "--api-url", stub.api_url, "--out", str(tmp_path)]  # fmt: skip
        mine = tmp_path / "sub-1" / "a.nwb"
        mine.parent.mkdir()
        mine.write_bytes(b"my own recording")
        _refused(capsys, argv, str(mine), "DANDI download")
        assert mine.read_bytes() == b"my own recording" and stub.download_count() == 0
        assert main([*argv, "--force"]) == 0
        assert mine.read_bytes() == asset
        mine.write_bytes(b"x" * len(asset))  # damaged, but an earlier download: replaced
        assert main(argv) == 0 and mine.read_bytes() == asset


def test_check_output_rules(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_output(empty, "fit") == empty  # nothing to lose
    assert check_output(tmp_path / "new", "evaluation") == tmp_path / "new"
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(FileExistsError, match="a file, not a folder"):
        check_output(tmp_path / "f.txt", "fit")
    with pytest.raises(ValueError, match="unknown output kind"):
        check_output(tmp_path / "x", "nope")
    with pytest.raises(ValueError, match="holds the input"):
        check_output(tmp_path, "fit", inputs=[tmp_path / "f.txt"], force=True)
    # inputs that are not paths (an in-memory dataset) are skipped
    assert check_output(tmp_path / "new", "fit", inputs=[object(), None]) == tmp_path / "new"
