"""The workflow's configuration: schema validation, error messages, shipped configs.

Every check runs Snakemake itself (``--dry-run`` in a subprocess, in a temporary working
directory), so what is tested is what a user gets on the command line. No job runs here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from helpers.workflow import (
    DEFAULT_CONFIG,
    EXAMPLES,
    ROOT,
    SLURM_PROFILE,
    SMALL_CONFIG,
    SNAKEFILE,
    dry_run_jobs,
    job_counts,
    small_config,
    snakemake,
    write_config,
)


# ------------------------------------------------------------------------ lint and style
def test_snakemake_lint_has_no_findings(tmp_path):
    res = snakemake("--lint", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Lints for" not in res.stdout + res.stderr


def test_snakefmt_check():
    exe = shutil.which("snakefmt")
    if exe is None:
        pytest.skip("snakefmt is not installed (it is in requirements/ci.txt)")
    files = [str(SNAKEFILE), *map(str, sorted((ROOT / "workflow" / "rules").glob("*.smk")))]
    res = subprocess.run([exe, "--check", *files], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_workflow_scripts_pass_ruff():
    scripts = sorted(map(str, (ROOT / "workflow" / "scripts").glob("*.py")))
    res = subprocess.run(
        [sys.executable, "-m", "ruff", "check", *scripts], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr
    res = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", *scripts],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_snakefile_only_wires():
    lines = SNAKEFILE.read_text().splitlines()
    assert len(lines) < 60
    assert not re.search(r"^rule (?!all:)", SNAKEFILE.read_text(), re.M)


# --------------------------------------------------------------------- shipped configs
def test_default_config_dry_run(tmp_path):
    """The built-in config: two simulated sessions, all 7 methods x 3 seeds."""
    res = snakemake("--dry-run", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout)
    assert counts["simulate_session"] == 2
    assert counts["bin_session"] == 2
    assert counts["fit"] == 2 * 5  # trained methods: all 3 seeds of a (session, method) in one job
    assert counts["fit_posthoc"] == 2 * 2  # lrRNN+ICA and LINT transform every seed's lrRNN
    assert counts["evaluate"] == 2 * 7  # every seed of a (session, method) in one job
    assert counts["session_report"] == 2 and counts["summary_report"] == 1
    assert "session_figures" not in counts  # the session report writes its figures too
    jobs = dry_run_jobs(res.stdout)
    fits = [out for rule, out in jobs if rule.startswith("fit")]
    assert all(re.search(r"/fits/[^/]+/seed\d+/fit_info\.json$", f) for f in fits)
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    presets = {s["simulate"]["preset"] for s in config["sessions"]}
    assert {"paper-gaussian", "rotation-limitcycle"} <= presets
    assert config["seeds"] == [0, 1, 2]
    assert set(config["methods"]) == {
        "lrRNN",
        "lrRNN+ICA",
        "LINT",
        "bdRNN",
        "DisRNN-full",
        "DisRNN",
        "DisRNN-MLP",
    }


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_configs_validate_and_dry_run_offline(example, tmp_path):
    res = snakemake("--dry-run", "--configfile", str(example), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    jobs = dry_run_jobs(res.stdout)
    fetches = [out for rule, out in jobs if rule == "fetch_dandi"]
    assert len(fetches) == 1 and fetches[0].startswith("resources/dandi/")
    config = yaml.safe_load(example.read_text())
    assert all(
        out.startswith(config["results_dir"] + "/")
        for rule, out in jobs
        if rule not in ("fetch_dandi", "all")
    )


def test_mc_maze_example_matches_the_benchmark():
    (session,) = yaml.safe_load((ROOT / "config/examples/mc_maze_small.yaml").read_text())[
        "sessions"
    ]
    assert session["dandi"]["dandiset"] == "000140"
    assert session["dandi"]["path"] == (
        "sub-Jenkins/sub-Jenkins_ses-small_desc-train_behavior+ecephys.nwb"
    )
    assert session["align"] == "move_onset_time"
    assert session["window"] == [-0.25, 0.45]
    assert session["bin_width"] == 0.02
    assert session["behavior"] == ["hand_vel"]
    assert session["behavior_lag"] == 0.1
    config = yaml.safe_load((ROOT / "config/examples/mc_maze_small.yaml").read_text())
    assert config["split"]["test_trials"] == {"column": "split", "values": ["val"]}


def test_alm_example_matches_the_benchmark():
    """config/examples/dandi_000006.yaml bins and fits the shared ALM session as
    ``benchmarks/real.py --sessions alm`` does, so its report shows that table's numbers."""
    config = yaml.safe_load((ROOT / "config/examples/dandi_000006.yaml").read_text())
    (session,) = config["sessions"]
    assert session["dandi"] == {
        "dandiset": "000006",
        "path": "sub-anm372904/sub-anm372904_ses-20170619.nwb",
    }
    assert (session["trials"], session["align"], session["window"]) == (
        "trials",
        "start_time",
        [0.0, 6.0],
    )
    assert config["binning"] == {"bin_width": 0.02, "min_rate": None, "condition": "type"}
    assert config["split"] == {"fractions": [0.6, 0.2, 0.2], "seed": 0}
    assert config["heldout"] == {"fraction": 0.25, "mode": "random"}
    assert config["fit"] == {"groups": [4, 4]}
    assert {sum(p) for p in config["select"]["partitions"]} == {6, 8, 10, 12}


def test_small_test_config_dry_run(tmp_path):
    res = snakemake("--dry-run", "--configfile", str(SMALL_CONFIG), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout)
    assert counts["fit"] == 2 and counts["fit_posthoc"] == 1 and counts["evaluate"] == 3


def test_one_fit_job_per_session_and_method_with_its_own_seeds(tmp_path):
    """Every seed of a (session, method) is one job; a session with its own seed list
    gets the rule of that list, whose outputs are exactly its seeds' folders."""
    config = small_config()
    config["seeds"] = [0, 1]
    second = {**config["sessions"][0], "id": "sim-other", "seeds": [4]}
    config["sessions"].append(second)
    res = snakemake(
        "--dry-run", "--configfile", str(write_config(tmp_path / "c.yaml", config)), cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout)
    assert counts["fit"] == 2 and counts["fit_1"] == 2  # lrRNN and DisRNN per session
    assert counts["fit_posthoc"] == 1 and counts["fit_posthoc_1"] == 1
    assert counts["evaluate"] == 3 and counts["evaluate_1"] == 3
    listed = re.findall(r"output: (.+)", res.stdout)  # each job's outputs, comma-separated
    other = [o for o in listed if "/sim-other/fits/" in o]
    assert other and all("/seed4/" in o for o in other)
    (main,) = [o for o in listed if "/sim-small/fits/DisRNN/" in o]  # one job, both seeds
    assert re.findall(r"seed(\d+)/fit_info", main) == ["0", "1"]
    (posthoc,) = [o for o in listed if "/sim-small/fits/lrRNN+ICA/" in o]
    assert re.findall(r"seed(\d+)/fit_info", posthoc) == ["0", "1"]
    (evals,) = [o for o in listed if "/sim-small/evals/DisRNN/" in o]
    assert re.findall(r"seed(\d+)/metrics", evals) == ["0", "1"]


def test_results_dir_keeps_runs_apart(tmp_path):
    config = small_config()
    config["results_dir"] = "results/other-run"
    res = snakemake(
        "--dry-run", "--configfile", str(write_config(tmp_path / "c.yaml", config)), cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    outs = [
        out for rule, out in dry_run_jobs(res.stdout) if rule not in ("simulate_session", "all")
    ]
    assert outs and all(out.startswith("results/other-run/") for out in outs)


def test_cuda_device_makes_fits_declare_a_gpu(tmp_path):
    config = small_config()
    config["device"] = "cuda"
    cfg = write_config(tmp_path / "c.yaml", config)
    res = snakemake("--dry-run", "--configfile", str(cfg), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    blocks = res.stdout.split("\nrule ")
    fit_blocks = [b for b in blocks if b.startswith("fit:")]
    assert fit_blocks and all("gpu=1" in b for b in fit_blocks)
    other = [b for b in blocks if b.startswith(("evaluate:", "fit_posthoc:", "bin_session:"))]
    assert other and not any("gpu=1" in b for b in other)


def test_slurm_profile_dry_run(tmp_path):
    """The SLURM profile parses; job sizes come from the config, partitions from the env.

    The profile holds no job sizes of its own (the config's ``resources:`` is their one
    place); its partition expressions read DISRNN_SLURM_PARTITION (every job) and
    DISRNN_SLURM_GPU_PARTITION (rules fit and select). A real cluster run is tests/test_slurm.py.
    """
    profile = yaml.safe_load(SLURM_PROFILE.read_text())
    assert profile["executor"] == "slurm"
    sizes = {"threads", "mem_mb", "runtime"}
    assert "set-threads" not in profile and not sizes & set(profile["default-resources"])
    assert not any(sizes & set(r) for r in profile["set-resources"].values())
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401

        profile_dir = SLURM_PROFILE.parent
    except ImportError:
        profile.pop("executor")
        profile_dir = tmp_path / "profile"
        profile_dir.mkdir()
        (profile_dir / "config.yaml").write_text(yaml.safe_dump(profile))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISRNN_SLURM_")}
    env.update(DISRNN_SLURM_PARTITION="p-cpu", DISRNN_SLURM_GPU_PARTITION="p-gpu")
    res = snakemake(
        "--dry-run", "--cores", "8", "--workflow-profile", str(profile_dir), cwd=tmp_path, env=env
    )
    assert res.returncode == 0, res.stderr
    blocks = res.stdout.split("\nrule ")
    fit_block = next(b for b in blocks if b.startswith("fit:"))
    evaluate_block = next(b for b in blocks if b.startswith("evaluate:"))
    want = yaml.safe_load(DEFAULT_CONFIG.read_text())["resources"]["fit"]
    assert f"runtime={want['runtime']}" in fit_block
    assert f"mem_mb={want['mem_mb']}" in fit_block
    assert "slurm_partition=p-gpu" in fit_block, fit_block
    assert "slurm_partition=p-cpu" in evaluate_block, evaluate_block
    select_block = next(b for b in blocks if b.startswith("select:"))
    assert "slurm_partition=p-gpu" in select_block, select_block  # it trains candidates


# ----------------------------------------------------------------------- config errors
def _session(sid="s1", **extra) -> dict:
    return {"id": sid, "simulate": {"preset": "lorenz-thomas", "seed": 0}, **extra}


#: the issue's four cases, each alone in a config: (config, message pattern)
HEADLINE_ERRORS = {
    "wrong key": (
        {"sessions": [_session(trails="trials")]},
        r"session 's1' \(sessions\[0\]\), field 'trails': unknown key 'trails'; allowed",
    ),
    "missing field": (
        {"sessions": [{"id": "d1", "dandi": {"dandiset": "000207"}}]},
        r"session 'd1' \(sessions\[0\]\), field 'dandi\.path': missing \(required\)",
    ),
    "duplicate session id": (
        {"sessions": [_session(), _session()]},
        r"session 's1' \(sessions\[1\]\), field 'id': duplicate session id, already used "
        r"by sessions\[0\]",
    ),
    "unknown method": (
        {"methods": ["DisRNN", "DisRNNN"], "sessions": [_session()]},
        r"field 'methods\.1': unknown method 'DisRNNN'; valid methods: lrRNN",
    ),
}


def _assert_stopped(res, tmp_path):
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "invalid config" in out, out
    assert "Job stats" not in out and not (tmp_path / "results").exists()
    assert not (tmp_path / "resources").exists()
    return out


def _stops_with(tmp_path, name: str, config: dict, patterns: list[str]) -> str:
    """Dry-run ``config``: it must stop before any job with every pattern in the message."""
    cfg = write_config(tmp_path / f"{name}.yaml", config)
    out = _assert_stopped(snakemake("--dry-run", "--configfile", str(cfg), cwd=tmp_path), tmp_path)
    missing = [p for p in patterns if not re.search(p, out)]
    assert not missing, f"{missing} not in:\n{out}"
    return out


@pytest.mark.parametrize("case", sorted(HEADLINE_ERRORS))
def test_config_error_stops_before_any_job(case, tmp_path):
    config, pattern = HEADLINE_ERRORS[case]
    cfg = write_config(tmp_path / "bad.yaml", config)
    res = snakemake("--dry-run", "--configfile", str(cfg), cwd=tmp_path)
    out = _assert_stopped(res, tmp_path)
    assert re.search(pattern, out), f"{pattern!r} not in:\n{out}"


def test_every_config_error_is_reported_at_once(tmp_path):
    """One config with many mistakes: each is named by session and field in one message."""
    config = {
        "method": ["DisRNN"],  # top-level typo
        "fit": {"epoch": 3},  # nested typo
        "seeds": [0, -1],
        "sessions": [
            _session("a", methods=["LINTT"]),
            {"simulate": {"preset": "lorenz-thomas"}},  # no id
            {"id": "x"},  # no source
            _session("two", local="a.nwb"),
            _session("win", window=[0.5]),
            {"id": "p", "simulate": {"preset": "lorenz-thomass"}},
            {"id": "loc", "local": "data/missing.nwb"},
            {"id": "index", "simulate": {"preset": "lorenz-thomas"}},
            {"id": "dd", "dandi": {"dandiset": "207", "path": "sub-1/a.nwb"}},
        ],
    }
    cfg = write_config(tmp_path / "bad.yaml", config)
    res = snakemake("--dry-run", "--configfile", str(cfg), cwd=tmp_path)
    out = _assert_stopped(res, tmp_path)
    patterns = [
        r"field 'method': unknown key 'method'",
        r"field 'fit\.epoch': unknown key 'epoch'",
        r"field 'seeds\.1': -1 is less than the minimum of 0",
        r"session 'a' \(sessions\[0\]\), field 'methods\.0': unknown method 'LINTT'",
        r"\(sessions\[1\]\), field 'id': missing \(required\)",
        r"session 'x' \(sessions\[2\]\), field 'dandi\|local\|simulate': give exactly one "
        r"source.*got none",
        r"session 'two' \(sessions\[3\]\), .*got \['local', 'simulate'\]",
        r"session 'win' \(sessions\[4\]\), field 'window'",
        r"session 'p' \(sessions\[5\]\), field 'simulate\.preset': unknown preset "
        r"'lorenz-thomass'; presets: .*lorenz-thomas",
        r"session 'loc' \(sessions\[6\]\), field 'local': no file 'data/missing\.nwb'",
        r"session 'index' \(sessions\[7\]\), field 'id': 'index' is reserved",
        r"session 'dd' \(sessions\[8\]\), field 'dandi\.dandiset'",
    ]
    missing = [p for p in patterns if not re.search(p, out)]
    assert not missing, f"{missing} not in:\n{out}"


def test_value_errors_come_from_the_dataclasses_and_name_session_and_field(tmp_path):
    """Value ranges live in BinConfig / FitConfig only; the workflow builds both for every
    session before any job and names where the bad value was set."""
    config = {
        "fit": {"lr": -1.0},
        "method_options": {"lrRNN": {"beta": 2.0}},
        "methods": ["lrRNN", "DisRNN"],
        "sessions": [_session(bin_width=-0.1, fit={"groups": [3, 0]}), _session("s2")],
    }
    cfg = write_config(tmp_path / "bad.yaml", config)
    res = snakemake("--dry-run", "--configfile", str(cfg), cwd=tmp_path)
    out = _assert_stopped(res, tmp_path)
    patterns = [
        r"session 's1' \(sessions\[0\]\), field 'bin_width': bin_width must be a positive",
        r"session 's1' \(sessions\[0\]\), field 'fit\.groups' \(method DisRNN\): every "
        r"group size must be a positive integer",
        r"field 'method_options\.lrRNN\.beta' \(method lrRNN\): method lrRNN fixes beta",
        r"field 'fit\.lr': lr must be a positive number",
    ]
    missing = [p for p in patterns if not re.search(p, out)]
    assert not missing, f"{missing} not in:\n{out}"


def test_references_and_condition_keys(tmp_path):
    """``references`` (enabled, smoothing grid) and ``condition`` (binning default and per
    session) are accepted; references off drops the reference job; misspelt or mistyped
    keys are named."""
    config = small_config()
    config["binning"]["condition"] = None
    config["sessions"][0]["condition"] = "condition"
    config["references"] = {
        "enabled": True,
        "kernel_sds": [0.03, 0.05],
        "causal_kernel_sds": [],
        "alphas": [0.01],
    }
    res = snakemake(
        "--dry-run", "--configfile", str(write_config(tmp_path / "on.yaml", config)), cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    assert job_counts(res.stdout)["reference"] == 1
    config["references"] = {"enabled": False}
    res = snakemake(
        "--dry-run", "--configfile", str(write_config(tmp_path / "off.yaml", config)), cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    assert "reference" not in job_counts(res.stdout)
    assert "evals/reference" not in res.stdout

    bad = {
        "references": {"enable": True, "folds": "3"},
        "binning": {"condition": 3},
        "sessions": [_session(condition=["type"])],
    }
    patterns = [
        r"field 'references\.enable': unknown key 'enable'",
        r"field 'references\.folds': '3' is not of type",
        r"field 'binning\.condition': 3 is not of type",
        r"session 's1' \(sessions\[0\]\), field 'condition': \['type'\] is not of type",
    ]
    _stops_with(tmp_path, "bad", bad, patterns)


def test_test_trials_key(tmp_path):
    """``split.test_trials`` (default and per session) is accepted; its value errors come
    from BinConfig and name the field where it was set; a bad shape is the schema's."""
    config = small_config()
    config["split"] = {"test_trials": {"column": "condition", "values": ["0"]}}
    res = snakemake(
        "--dry-run", "--configfile", str(write_config(tmp_path / "ok.yaml", config)), cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    bad = {  # schema: checked first
        "sessions": [
            _session("s2", split={"test_trials": {"column": "split", "values": []}}),
            _session("s3", split={"test_trials": {"column": "split"}}),
        ],
    }
    patterns = [
        r"session 's2' \(sessions\[0\]\), field 'split\.test_trials\.values': \[\] should "
        r"be non-empty",
        r"session 's3' \(sessions\[1\]\), field 'split\.test_trials\.values': missing",
    ]
    _stops_with(tmp_path, "schema", bad, patterns)
    bad = {"split": {"test_trials": {"column": "", "values": ["val"]}}, "sessions": [_session()]}
    pattern = r"field 'split\.test_trials': test_trials column must be a trial column's name"
    _stops_with(tmp_path, "value", bad, [pattern])


def test_semantic_errors_stop_before_any_job(tmp_path):
    """Values each component accepts alone but the run cannot: found at validation, each
    named by session and field (the counts of a simulated session are known up front)."""
    folders = {
        "results_dir": "",
        "logs_dir": "/",
        "sessions": [{"id": "dd", "dandi": {"dandiset": "000140", "path": "sub-1/../../x.nwb"}}],
    }
    patterns = [
        r"field 'results_dir': '' would write the outputs at the filesystem root",
        r"field 'logs_dir': '/' would write the outputs at the filesystem root",
        r"session 'dd' \(sessions\[0\]\), field 'dandi\.path': .*'\.\.' component",
    ]
    _stops_with(tmp_path, "folders", folders, patterns)

    def sim(sid, **extra):
        return {
            "id": sid,
            "simulate": {"preset": "lorenz-thomas", "n_trials": 10, "n_units": 20},
            **extra,
        }

    values = {
        "sessions": [
            sim("win", window=[1.0, 0.5]),
            sim("zero", split={"fractions": [0.8, 0.2, 0.0]}),
            sim("sum", split={"fractions": [0.5, 0.2, 0.2]}),
            sim("few", split={"fractions": [0.96, 0.02, 0.02]}),  # 10 trials: no val, no test
            sim("all", heldout_fraction=0.99),  # round(0.99 x 20) = 20 units held out
            sim("one", heldout_fraction=1.0),
        ],
        "heldout": {"fraction": 0.2},
    }
    patterns = [
        r"session 'win' \(sessions\[0\]\), field 'window': window start must be before its end",
        r"session 'zero' \(sessions\[1\]\), field 'split\.fractions': .* leaves no test trials",
        r"session 'sum' \(sessions\[2\]\), field 'split\.fractions': .*summing to 1",
        r"session 'few' \(sessions\[3\]\), field 'split\.fractions': split \(0\.96, 0\.02, 0\.02\) "
        r"of 10 trials leaves no val and no test trials",
        r"session 'all' \(sessions\[4\]\), field 'heldout_fraction': .*holds out all 20",
        r"session 'one' \(sessions\[5\]\), field 'heldout_fraction': heldout_fraction must be "
        r"in \[0, 1\)",
    ]
    _stops_with(tmp_path, "values", values, patterns)


def test_a_stale_local_nwb_file_is_warned_about(tmp_path):
    """A local NWB file replaced by another one with an older mtime (cp -p) is not rebuilt
    by Snakemake; the sha256 the dataset records tells them apart."""
    import os

    import numpy as np
    from nwb_factory import poisson_spikes, write_nwb

    from disrnn.data.binning import BinConfig, bin_session
    from disrnn.data.io import save_dataset

    rng = np.random.default_rng(0)
    trials = {"start_time": np.arange(10.0), "stop_time": np.arange(10.0) + 1}
    nwb = write_nwb(
        tmp_path / "rec.nwb", spike_times=poisson_spikes(rng, 4, 11, 5.0), trials=trials
    )
    dataset = tmp_path / "results" / "loc" / "dataset.nc"
    save_dataset(bin_session(nwb, BinConfig(bin_width=0.1)), dataset)
    config = {"sessions": [{"id": "loc", "local": "rec.nwb", "bin_width": 0.1}], "seeds": [0]}
    cfg = write_config(tmp_path / "c.yaml", config)
    res = snakemake("--dry-run", "--configfile", str(cfg), cwd=tmp_path)
    assert res.returncode == 0 and "another version" not in res.stdout + res.stderr, res.stderr
    write_nwb(nwb, spike_times=poisson_spikes(rng, 4, 11, 5.0), trials=trials)
    os.utime(nwb, (dataset.stat().st_mtime - 60,) * 2)  # older than the dataset
    res = snakemake("--dry-run", "--configfile", str(cfg), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert "bin_session" not in job_counts(res.stdout)  # Snakemake itself sees nothing new
    assert re.search(
        r"session 'loc': .*dataset\.nc was binned from another version of rec\.nwb", out
    ), out
    assert "--forcerun results/loc/dataset.nc" in out
