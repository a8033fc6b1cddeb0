"""Nothing lost, nothing run, nothing said silently: checkpoints load as tensors only, a
failing job's log holds its error, tokens never reach a log, one writer per fit folder,
a killed writer's leftovers are cleaned, damaged fit folders fail naming the file."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import runpy
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from dandi_stub import DandiStub, quiet_dandi_client
from helpers.workflow import snakemake, write_config
from nwb_factory import write_nwb

from disrnn._atomic import OutputLockedError, atomic_file, writer_lock
from disrnn.cli import main
from disrnn.data.binning import BinConfig, bin_session
from disrnn.data.io import save_dataset
from disrnn.fit import FitConfig, fit, load_fit
from disrnn.logs import redact

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"
TOKEN = "sekrit-0123456789abcdef-token"
TRIALS = {"start_time": np.array([0.0, 2.0, 4.0]), "stop_time": np.array([1.0, 3.0, 5.0])}


@pytest.fixture
def dataset(tmp_path, toy_dataset):
    return save_dataset(toy_dataset(n_trials=12, n_time=20, n_units=6), tmp_path / "d.nc")


def _cfg(**kw):
    return FitConfig.create("lrRNN", groups=(2,), epochs=2, checkpoint_every=1, **kw)


# ------------------------------------------------------------------------ checkpoints
class _Planted:
    """Unpickling this creates ``path``: what a planted checkpoint could do."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_planted_checkpoint_is_refused_without_running_it(dataset, tmp_path, writer):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / ".fit.checkpoint.pt"
    with open(ckpt, "wb") as f:
        payload = {"fingerprint": {}, "module": _Planted(marker)}
        torch.save(payload, f) if writer == "torch.save" else pickle.dump(payload, f, 2)
    with pytest.raises(ValueError, match=r"refusing to load the checkpoint .*\.fit\.checkpoint"):
        fit(dataset, _cfg(), tmp_path / "fit", progress=False)
    assert not marker.exists() and ckpt.exists() and not (tmp_path / "fit").exists()
    # the test can fail: the same file loaded without weights_only runs its code
    with contextlib.suppress(RuntimeError):  # (a bare pickle runs, then is no torch file)
        torch.load(ckpt, weights_only=False)
    assert marker.exists()


def test_checkpoint_holds_only_tensors_and_plain_containers(dataset, tmp_path):
    class Stop(Exception):
        pass

    def stop(epoch):
        raise Stop

    with pytest.raises(Stop):
        fit(dataset, _cfg(), tmp_path / "fit", progress=False, on_epoch=stop)
    saved = torch.load(tmp_path / ".fit.checkpoint.pt", weights_only=True)
    assert saved["state"]["epoch"] == 1 and saved["generator"].dtype == torch.uint8
    fit(dataset, _cfg(), tmp_path / "fit", progress=False)  # resumes from it
    assert not (tmp_path / ".fit.checkpoint.pt").exists()


# -------------------------------------------------------------------------- job logs
class _Smk(dict):
    """A stand-in for Snakemake's namespaces (attribute access and ``keys()``)."""

    __getattr__ = dict.__getitem__


def _failing_job(name: str, tmp: Path) -> _Smk:
    """The ``snakemake`` object of a job of script ``name`` whose one call fails."""
    missing = str(tmp / "missing")
    return _Smk(
        input=_Smk(nwb=missing, dataset=missing, fit=f"{missing}/fit_info.json",
                   metrics=[f"{missing}/metrics.json"], sessions=[]),
        output=_Smk(nwb=str(tmp / "out" / "a.nwb"), dataset=str(tmp / "out" / "d.nc"),
                    info=str(tmp / "out" / "fit" / "fit_info.json"),
                    metrics=str(tmp / "out" / "ev" / "metrics.json"),
                    html=str(tmp / "out" / "r.html"), figures=str(tmp / "out" / "figs")),
        params=_Smk(options={"preset": "no-such-preset", "bin_width": 0.02},
                    source={"dandiset": "12", "path": "a.nwb"}, method="no-such-method",
                    seed=0, device="cpu", session="s"),
        wildcards=_Smk(session="s"),
        log=[str(tmp / "job.log")],
        threads=1,
    )  # fmt: skip


@pytest.mark.parametrize("script", sorted(p.stem for p in SCRIPTS.glob("*.py")))
def test_every_script_logs_its_error_to_the_job_log(script, tmp_path):
    smk = _failing_job(script, tmp_path)
    with pytest.raises(Exception) as raised:
        runpy.run_path(str(SCRIPTS / f"{script}.py"), init_globals={"snakemake": smk},
                       run_name="__main__")  # fmt: skip
    log = Path(smk.log[0]).read_text()
    err = raised.value
    assert f"ERROR disrnn: failed: {type(err).__name__}: " in log, log
    assert str(err).splitlines()[0] in log and "Traceback" in log


@pytest.mark.slow
def test_failing_workflow_job_leaves_its_error_in_its_log(tmp_path):
    (tmp_path / "bad.nwb").write_text("this is not HDF5\n")
    config = {"sessions": [{"id": "bad", "local": "bad.nwb"}], "methods": ["lrRNN"], "seeds": [0]}
    write_config(tmp_path / "c.yaml", config)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = snakemake("results/bad/dataset.nc", "--cores", "1", "--configfile",
                    str(tmp_path / "c.yaml"), cwd=tmp_path, env=env)  # fmt: skip
    assert res.returncode != 0
    assert (tmp_path / "logs" / "bad" / "bin.log").is_file(), res.stderr[-3000:]
    log = (tmp_path / "logs" / "bad" / "bin.log").read_text()
    assert "ERROR disrnn: failed: ValueError: " in log and "not an NWB file" in log, log


# ------------------------------------------------------------------------- redaction
def test_redact_hides_the_key_and_token_patterns(monkeypatch):
    monkeypatch.setenv("DANDI_API_KEY", "abcd")
    assert redact("key abcd here") == "key <redacted> here"
    text = (
        'Authorization: token 0123456789abcdef0123456789abcdef01234567, "Bearer x1y2z3w4v5u6t7s8"'
    )
    assert redact(text) == 'Authorization: token <redacted>, "Bearer <redacted>"'
    plain = "the API rejected the token in DANDI_API_KEY (HTTP 401); Invalid token."
    assert redact(plain) == plain


def test_fetch_log_never_holds_the_token(tmp_path, monkeypatch, caplog, capsys):
    quiet_dandi_client(monkeypatch)
    monkeypatch.setenv("DANDI_API_KEY", TOKEN)
    with DandiStub(files={"sub-1/a.nwb": b"bytes" * 20}, token="another-token") as stub:
        stub.echo_authorization = True  # its 401 body holds "token <TOKEN>"
        smk = _Smk(
            params=_Smk(source={"dandiset": "000207", "path": "sub-1/a.nwb",
                                "api_url": stub.api_url}),
            output=_Smk(nwb=str(tmp_path / "dl" / "sub-1" / "a.nwb")),
            log=[str(tmp_path / "fetch.log")],
        )  # fmt: skip
        with pytest.raises(PermissionError):
            runpy.run_path(str(SCRIPTS / "fetch.py"), init_globals={"snakemake": smk},
                           run_name="__main__")  # fmt: skip
        caplog.set_level(logging.DEBUG)
        argv = ["fetch", "--dandiset", "000207", "--path", "sub-1/a.nwb", "--api-url",
                stub.api_url, "--out", str(tmp_path / "cli")]  # fmt: skip
        assert main(argv) == 2
    log = Path(smk.log[0]).read_text()
    assert "Authorization: token <redacted>" in log  # the body was logged, redacted
    assert "PermissionError" in log and TOKEN not in log and "sekrit" not in log
    assert "Authorization: token <redacted>" in caplog.text and TOKEN not in caplog.text
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err


# --------------------------------------------------------------------- one writer
def test_second_writer_of_a_fit_folder_fails_clearly(dataset, tmp_path, capsys):
    out = tmp_path / "fit"
    with writer_lock(out, "fit folder") as lock:
        with pytest.raises(OutputLockedError, match=rf"being written by pid {os.getpid()}"):
            fit(dataset, _cfg(), out, progress=False)
        assert not list(tmp_path.glob(".fit.checkpoint*"))  # it never started training
    assert not lock.exists()
    # a writer in another process, then killed: the kernel frees its lock
    code = ("import sys, time; from disrnn._atomic import writer_lock\n"
            f"with writer_lock({str(out)!r}):\n    print('locked', flush=True); time.sleep(60)")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert child.stdout.readline().strip() == "locked"
        argv = ["fit", str(dataset), "--method", "lrRNN", "--groups", "2", "--epochs", "1",
                "--no-progress", "--out", str(out)]  # fmt: skip
        assert main(argv) == 2
        assert f"being written by pid {child.pid}" in capsys.readouterr().err
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert main(argv) == 0 and (out / "fit_info.json").is_file()


def test_killed_writers_part_files_are_removed_by_the_next_write(tmp_path, capsys):
    nwb = write_nwb(tmp_path / "s.nwb", spike_times=[[0.5, 2.5]], unit_ids=[1], trials=TRIALS)
    out = tmp_path / "out" / "d.nc"
    code = ("import os, signal; from disrnn._atomic import atomic_file\n"
            f"with atomic_file({str(out)!r}) as tmp:\n"
            "    tmp.write_text('half'); os.kill(os.getpid(), signal.SIGKILL)")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == -signal.SIGKILL
    stale = list(out.parent.glob(".d.nc.*.part"))
    assert len(stale) == 1
    with atomic_file(out) as live:  # a running writer's part file is kept
        assert main(["bin", str(nwb), "--out", str(out), "--bin-width", "0.5"]) == 0
        assert live.exists()
        live.write_text("newer")
    assert not list(out.parent.glob(".d.nc.*")) and out.read_text() == "newer"


# ------------------------------------------------------------------ damaged fit folders
@pytest.fixture
def fit_dir(dataset, tmp_path):
    return fit(dataset, _cfg(), tmp_path / "fit", progress=False)


@pytest.mark.parametrize("damage", ["config.json", "fit_info.json"])
def test_corrupt_json_of_a_fit_names_the_file(fit_dir, dataset, tmp_path, capsys, damage):
    (fit_dir / damage).write_text('{"method": "lrRNN", ')
    with pytest.raises(ValueError, match=rf"{damage}' is not valid JSON"):
        load_fit(fit_dir)
    assert main(["evaluate", str(fit_dir), str(dataset), "--out", str(tmp_path / "ev")]) == 2
    assert str(fit_dir / damage) in capsys.readouterr().err


def test_nan_weights_give_a_clear_error(fit_dir, dataset, tmp_path, capsys):
    state = torch.load(fit_dir / "weights.pt", weights_only=True)
    state["A"] = torch.full_like(state["A"], float("nan"))
    torch.save(state, fit_dir / "weights.pt")
    with pytest.raises(ValueError, match=r"not finite \(NaN or inf in A\)"):
        load_fit(fit_dir)
    assert main(["evaluate", str(fit_dir), str(dataset), "--out", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err
    assert "weights.pt" in err and "NoneType" not in err


# ------------------------------------------------------------------------- NWB reading
def test_simulated_session_provenance_says_simulated(tmp_path):
    from disrnn.simulate import simulate_nwb

    path = simulate_nwb("lorenz-thomas", tmp_path / "sim.nwb", n_trials=4, n_units=6)
    assert bin_session(path, BinConfig(bin_width=0.05)).attrs["source"] == "simulated"
    plain = write_nwb(tmp_path / "p.nwb", spike_times=[[0.5]], unit_ids=[1], trials=TRIALS)
    assert bin_session(plain, BinConfig(bin_width=0.5)).attrs["source"] == "local"


def test_unsorted_spike_times_give_one_warning(tmp_path, caplog):
    spikes = [[2.5, 0.5, 0.7]] * 8 + [[0.1, 0.2]]
    path = write_nwb(tmp_path / "u.nwb", spike_times=spikes, unit_ids=list(range(10, 19)),
                     trials=TRIALS)  # fmt: skip
    caplog.set_level(logging.WARNING)
    ds = bin_session(path, BinConfig(bin_width=0.5))
    records = [r for r in caplog.records if "not sorted" in r.getMessage()]
    assert len(records) == 1
    assert "in 8 of 9 units (unit 10, 11, 12, 13, 14 and 3 more)" in records[0].getMessage()
    assert ds["activity"].sel(unit=10).values.tolist() == [[0, 2], [0, 1], [0, 0]]
