"""The Snakemake workflow end to end, in temporary working directories.

- the small config (tests/config_small.yaml): a first run is killed (SIGKILL to the whole
  Snakemake process group) while a fit is training and has written a checkpoint; the
  re-run completes and that fit resumes from its checkpoint. Then the metrics, reports,
  ``snakemake --report`` and the add-a-session dry run are checked on the result;
- the DANDI 000207 example session, downloaded from the stand-in DANDI server
  (tests/dandi_stub.py) through the report, with a short training budget.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import xarray as xr
import yaml
from dandi_stub import ASSET_PATH, DANDISET, PUBLISHED_VERSION, SHARED_NWB, DandiStub
from helpers.workflow import (
    SMALL_CONFIG,
    SNAKEFILE,
    dry_run_jobs,
    numbers_of,
    snakemake,
    write_config,
)

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
SESSION = "sim-small"
KILL_TIMEOUT = 240  # seconds to wait for a checkpoint before giving up


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DANDI_API_KEY", "DANDI_API_URL")}
    env.update({"DANDI_NO_ET": "1", "PYTHONUNBUFFERED": "1", **extra})
    return env


# ------------------------------------------------------------------- the small run
@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """Run the small config: kill it during a checkpointed fit, then run it again."""
    work = tmp_path_factory.mktemp("small_run")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE)]
    cmd += ["--directory", str(work), "--cores", "2", "--configfile", str(SMALL_CONFIG)]
    fits = work / "results" / SESSION / "fits"
    first_log = work / "first-attempt.log"
    with open(first_log, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=work, env=_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        checkpoint = None
        deadline = time.monotonic() + KILL_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            found = sorted(fits.glob("*/.seed*.checkpoint.pt")) if fits.exists() else []
            if found:
                checkpoint = found[0]
                break
            time.sleep(0.02)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and every job it started
        proc.wait()
    killed = None
    if checkpoint is not None:
        seed = int(re.search(r"seed(\d+)", checkpoint.name).group(1))
        killed = SimpleNamespace(
            method=checkpoint.parent.name,
            seed=seed,
            finished_at_kill=(checkpoint.parent / f"seed{seed}" / "fit_info.json").exists(),
        )
    # after SIGKILL the working directory stays locked; --unlock is the documented step.
    # A job that had written its output but was killed before Snakemake recorded it as
    # done (e.g. the model selection running beside the fit) is marked incomplete, so the
    # documented re-run passes --rerun-incomplete.
    unlock = snakemake("--unlock", "--configfile", str(SMALL_CONFIG), cwd=work, env=_env())
    start = time.monotonic()
    rerun = ("--cores", "2", "--rerun-incomplete", "--configfile", str(SMALL_CONFIG))
    second = snakemake(*rerun, cwd=work, env=_env())
    return SimpleNamespace(
        work=work,
        results=work / "results",
        first_log=first_log.read_text(),
        first_rc=proc.returncode,
        killed=killed,
        unlock=unlock,
        second=second,
        seconds=time.monotonic() - start,
    )


def test_kill_during_fit_then_rerun_resumes_from_checkpoint(small_run):
    assert small_run.killed is not None, (
        "no fit checkpoint appeared before the first run ended; first run log:\n"
        + small_run.first_log[-3000:]
    )
    assert small_run.first_rc == -signal.SIGKILL
    assert not small_run.killed.finished_at_kill
    assert small_run.unlock.returncode == 0, small_run.unlock.stderr
    assert small_run.second.returncode == 0, small_run.second.stderr[-5000:]
    k = small_run.killed
    fit_dir = small_run.results / SESSION / "fits" / k.method / f"seed{k.seed}"
    info = json.loads((fit_dir / "fit_info.json").read_text())
    assert info  # a finished fit
    assert not list(fit_dir.parent.glob(".seed*.checkpoint.pt")), "checkpoint left behind"
    # every seed of a trained method is one job, with one log
    log = (small_run.work / "logs" / SESSION / "fit" / k.method / "seeds.log").read_text()
    resumed = re.search(r"resuming from \S*\.seed\d+\.checkpoint\.pt at epoch (\d+)", log)
    assert resumed, log[-3000:]
    assert int(resumed.group(1)) >= 1  # it did not start over


def test_rerun_after_completion_has_nothing_to_do(small_run):
    res = snakemake("--dry-run", "--configfile", str(SMALL_CONFIG), cwd=small_run.work)
    assert res.returncode == 0, res.stderr
    assert "Nothing to be done" in res.stdout + res.stderr, res.stdout


def test_small_run_writes_every_stage(small_run):
    config = yaml.safe_load(SMALL_CONFIG.read_text())
    res = small_run.results
    assert (small_run.work / "resources" / "simulated" / f"{SESSION}.nwb").is_file()
    ds = xr.open_dataset(res / SESSION / "dataset.nc", engine="h5netcdf")
    assert ds["activity"].dims == ("trial", "time", "unit")
    assert "true_latents" in ds and "behavior" in ds
    assert set(ds["split"].values.astype(str)) == {"train", "val", "test"}
    ds.close()
    for method in config["methods"]:
        for seed in config["seeds"]:
            fit = res / SESSION / "fits" / method / f"seed{seed}"
            assert {"config.json", "weights.pt", "losses.csv", "fit_info.json"} <= {
                p.name for p in fit.iterdir()
            }
            saved = json.loads((fit / "config.json").read_text())
            assert saved.get("seed", seed) == seed
            ev = res / SESSION / "evals" / method / f"seed{seed}"
            assert (ev / "latents.nc").is_file()
        # every seed of a (session, method) is evaluated in one job, with one log
        assert (small_run.work / "logs" / SESSION / "evaluate" / method / "seeds.log").exists()
    # post-hoc fits were made from the lrRNN fit, not trained
    posthoc_log = (
        small_run.work / "logs" / SESSION / "fit" / "lrRNN+ICA" / "seeds.log"
    ).read_text()
    assert "lrRNN/seed0" in posthoc_log


def test_small_run_metrics_are_finite_and_complete(small_run):
    config = yaml.safe_load(SMALL_CONFIG.read_text())
    seen = {}
    for method in config["methods"]:
        path = small_run.results / SESSION / "evals" / method / "seed0" / "metrics.json"
        metrics = json.loads(path.read_text())
        seen[method] = metrics
        assert metrics["method"] == method and metrics["seed"] == 0
        numbers = dict(numbers_of(metrics))
        bad = {k: v for k, v in numbers.items() if not math.isfinite(v)}
        assert not bad, f"{method}: non-finite metrics {bad}"
        # simulated session: the truth is known, so group latent R^2 is reported
        assert metrics["group_latent_r2"] is not None
        assert -1.0 <= metrics["group_latent_r2"] <= 1.0
        # spikes: test log-likelihood, bits per spike, held-out co-bps
        assert metrics["test_ll_per_bin_neuron"] < 0
        assert metrics["co_bps"] is not None and metrics["n_heldout"] > 0
        assert metrics["pc"] is not None
        # behavior was binned: decoding R^2 from the latents
        assert "behavior" in metrics["behavior_r2"]
        # the simulator labels trials by the Lorenz lobe: condition decoded from latents
        for key in ("condition_accuracy", "condition_accuracy_time_mean", "condition_chance"):
            assert 0.0 <= metrics[key] <= 1.0, (method, key)
    # the post-hoc transform leaves the network, hence the predictions, unchanged
    assert seen["lrRNN+ICA"]["test_ll_per_bin_neuron"] == pytest.approx(
        seen["lrRNN"]["test_ll_per_bin_neuron"], rel=1e-3
    )
    # ... and so its smoothing posterior: the lrRNN's is reused, not trained again
    ica, lr = seen["lrRNN+ICA"], seen["lrRNN"]
    lr_eval = small_run.results / SESSION / "evals" / "lrRNN" / "seed0"
    assert ica["smoothing_posterior_from"] == str(lr_eval.resolve())
    assert ica["co_bps_smoothed"] == lr["co_bps_smoothed"] is not None
    assert ica["smoothing_posterior_seconds"] == 0 < lr["smoothing_posterior_seconds"]
    assert "smoothing_posterior_from" not in seen["DisRNN"]


def test_small_run_scores_the_reference_once(small_run):
    """Spike counts with held-out units: the smoothing reference, one folder, on the test
    trials the fits are scored on, with the session's id."""
    evals = small_run.results / SESSION / "evals"
    ref = json.loads((evals / "reference" / "seed0" / "metrics.json").read_text())
    assert ref["method"] == "smoothing" and ref["seed"] == 0 and ref["session"] == SESSION
    assert math.isfinite(ref["co_bps"]) and ref["kernel_sd"] > 0 and ref["n_heldout"] > 0
    assert ref["test_ll_heldout_per_bin_neuron"] < 0
    fit = json.loads((evals / "DisRNN" / "seed0" / "metrics.json").read_text())
    assert ref["n_test_trials"] == fit["n_test_trials"]
    assert sorted(p.name for p in evals.iterdir()) == sorted(["reference", *_methods()])
    assert (small_run.work / "logs" / SESSION / "evaluate" / "reference" / "seed0.log").exists()


def _methods():
    return yaml.safe_load(SMALL_CONFIG.read_text())["methods"]


def test_small_run_reports(small_run):
    reports = small_run.results / "reports"
    index = (reports / "index.html").read_text()
    session = (reports / f"{SESSION}.html").read_text()
    assert len(session) > 10_000 and "<img" in session
    assert SESSION in index and f"{SESSION}.html" in index
    for method in ("lrRNN", "lrRNN+ICA", "DisRNN"):
        assert method in session and method in index
    # the reference is a method row of both reports
    assert re.search(r"<t[hd][^>]*>\s*smoothing\s*</t[hd]>", session), "no smoothing row"
    assert "smoothing" in index
    # the session's model selection: its verdict in the section and in the summary's table
    sel = json.loads((small_run.results / SESSION / "selection" / "selection.json").read_text())
    assert sel["rank"] in (3, 6) and sel["sentence"] in html.unescape(session)
    assert 'id="modules-verdict"' in session and 'id="selection-table"' in index
    assert re.search(
        rf'data-session="{SESSION}"><td>{SESSION}</td><td class="num">{sel["rank"]}<', index
    )


def test_snakemake_report_groups_items_by_session_and_method(small_run, tmp_path):
    out = tmp_path / "report.zip"
    res = snakemake(
        "--report", str(out), "--configfile", str(SMALL_CONFIG), cwd=small_run.work, env=_env()
    )
    assert res.returncode == 0, res.stderr[-3000:]
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
    assert any(f"{SESSION}.html" in n for n in names), names[:20]
    assert any("metrics.json" in n for n in names), names[:20]
    # the figures are items of their own, one folder per method
    pngs = [n for n in names if n.endswith(".png")]
    for folder in ("overview", "lrrnn", "lrrnn+ica", "disrnn"):
        assert any(f"/{folder}/" in n for n in pngs), (folder, pngs[:20])


def test_adding_a_session_schedules_only_its_jobs(small_run, tmp_path):
    config = yaml.safe_load(SMALL_CONFIG.read_text())
    config["sessions"].append(
        {"id": "sim-added", "simulate": {"preset": "rotation-limitcycle", "seed": 9}}
    )
    cfg = write_config(tmp_path / "more.yaml", config)
    res = snakemake("--dry-run", "--configfile", str(cfg), cwd=small_run.work)
    assert res.returncode == 0, res.stderr
    jobs = dry_run_jobs(res.stdout)
    others = [
        (rule, out)
        for rule, out in jobs
        if "sim-added" not in out and rule not in ("summary_report", "all")
    ]
    assert not others, f"jobs of existing sessions were scheduled again: {others}"
    rules = [rule for rule, _ in jobs]
    assert rules.count("summary_report") == 1 and rules.count("session_report") == 1
    assert rules.count("simulate_session") == 1 and rules.count("evaluate") == 3
    assert rules.count("reference") == 1


# ------------------------------------------------------------------- DANDI end to end
def test_dandi_000207_session_end_to_end(tmp_path):
    """The shipped 000207 example session, from download to report, via the stand-in server."""
    if not SHARED_NWB.is_file():
        pytest.skip(f"the real DANDI file is absent ({SHARED_NWB}); it is not part of a clone")
    config = yaml.safe_load((ROOT / "config" / "examples" / "dandi_000207.yaml").read_text())
    (session,) = config["sessions"]
    assert session["dandi"] == {"dandiset": DANDISET, "path": ASSET_PATH}
    config.update(
        device="cpu",
        methods=["lrRNN", "LINT", "DisRNN"],
        seeds=[0],
        fit={**config["fit"], "epochs": 8, "patience": 8},
        # the selection's path, shrunk as in the small config (tests/test_selection.py
        # checks what it selects)
        select={"ranks": [2, 4], "seeds": 2, "epochs": 4},
    )
    with DandiStub() as stub:
        config["dandi_api_url"] = stub.api_url
        cfg = write_config(tmp_path / "dandi.yaml", config)
        res = snakemake("--cores", "2", "--configfile", str(cfg), cwd=tmp_path, env=_env())
        assert res.returncode == 0, res.stderr[-5000:]
        assert stub.download_count() == 1
    results = tmp_path / config["results_dir"]
    nwb = tmp_path / "resources" / "dandi" / DANDISET / "latest" / ASSET_PATH
    assert nwb.is_file() and nwb.stat().st_size == SHARED_NWB.stat().st_size
    sidecar = json.loads(nwb.with_name(nwb.name + ".dandi.json").read_text())
    assert sidecar["version"] == PUBLISHED_VERSION
    ds = xr.open_dataset(results / session["id"] / "dataset.nc", engine="h5netcdf")
    assert ds.attrs["dandiset"] == DANDISET
    assert ds.attrs["asset_path"] == ASSET_PATH
    assert ds.sizes["trial"] == 180 and ds.sizes["time"] == 40  # 2 s at 50 ms
    assert "true_latents" not in ds
    ds.close()
    for method in config["methods"]:
        metrics = json.loads(
            (results / session["id"] / "evals" / method / "seed0" / "metrics.json").read_text()
        )
        assert metrics.get("group_latent_r2") is None  # real data: no truth
        assert math.isfinite(metrics["test_ll_per_bin_neuron"])
    report = (results / "reports" / f"{session['id']}.html").read_text()
    assert DANDISET in report and "index" not in session["id"]
    assert (results / "reports" / "index.html").is_file()


# ------------------------------------------------------------- scripts run on their own
def test_bin_script_runs_without_snakemake(tmp_path):
    """A workflow script is a thin layer: given a stand-in ``snakemake`` object, it runs."""
    if not SHARED_NWB.is_file():
        pytest.skip(f"the real DANDI file is absent ({SHARED_NWB}); it is not part of a clone")
    import runpy

    smk = SimpleNamespace(
        input=SimpleNamespace(nwb=str(SHARED_NWB)),
        output=SimpleNamespace(dataset=str(tmp_path / "out" / "dataset.nc")),
        params=SimpleNamespace(
            options={
                "bin_width": 0.05,
                "trials": "recognition_table",
                "align": "fixcross_time",
                "window": [-0.5, 1.5],
                "split": [0.7, 0.15, 0.15],
                "seed": 0,
                "allow_overlap": True,  # 4 pairs of these windows overlap
            }
        ),
        log=[str(tmp_path / "bin.log")],
        threads=1,
    )
    runpy.run_path(
        str(ROOT / "workflow" / "scripts" / "bin.py"),
        init_globals={"snakemake": smk},
        run_name="__main__",
    )
    ds = xr.open_dataset(smk.output.dataset, engine="h5netcdf")
    assert dict(ds.sizes)["trial"] == 180 and dict(ds.sizes)["time"] == 40
    assert dict(ds.sizes)["unit"] == 35  # no unit filter given
    ds.close()
    assert "bin " in (tmp_path / "bin.log").read_text()
