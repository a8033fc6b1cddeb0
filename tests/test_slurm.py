"""The workflow on a real SLURM cluster: a single node on this machine (tests/helpers/slurm.py)
and the shipped profile, ``--workflow-profile workflow/profiles/slurm``.

Three runs go at once (the cluster has 2 CPUs; its status polling leaves the machine idle
between jobs, which the local run fills):

- the small config (tests/config_small.yaml, trimmed to lrRNN and its ICA transform and
  10 epochs) through SLURM, with the partitions named by the profile's environment
  variables;
- the same config locally, up to its metrics;
- a session whose "NWB file" is text, through SLURM: its bin job fails on the cluster.

Skipped, with the reason, only where the SLURM/munge packages are missing or the daemons
do not start; the executor plugin is part of the test extra and must be installed.
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from helpers.slurm import ClusterUnavailable, SlurmCluster
from helpers.workflow import (
    DEFAULT_CONFIG,
    SLURM_PROFILE,
    dry_run_jobs,
    numbers_of,
    small_config,
    snakemake,
    snakemake_cmd,
    write_config,
)

pytestmark = pytest.mark.slow
SESSION = "sim-small"
#: partition of every job but the training ones (DISRNN_SLURM_PARTITION), and theirs
#: (rules fit and select: DISRNN_SLURM_GPU_PARTITION); neither is the cluster's default
PARTITION, TRAIN_PARTITION = "jobs", "train"
RUN_TIMEOUT = 900  # seconds for each run
#: the plugin's status command: without an accounting database sacct knows no jobs, and
#: squeue sees finished ones for MinJobAge; a first check 2 s after a submission
SLURM_TEST_ARGS = (
    "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
)  # fmt: skip
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError as err:  # the test extra lists it: a broken install, not a skip
        pytest.fail(f"{err}; pip install -e '.[test]' installs snakemake-executor-plugin-slurm")
    try:
        with SlurmCluster(tmp_path_factory.mktemp("slurm"), (PARTITION, TRAIN_PARTITION)) as c:
            yield c
    except ClusterUnavailable as err:
        pytest.skip(f"no single-node SLURM cluster: {err}")


def _config():
    config = small_config()
    config["methods"] = ["lrRNN", "lrRNN+ICA"]
    config["fit"].update(epochs=10, patience=10)
    return config


def _metrics_paths(config) -> list[str]:
    names = [*config["methods"], "reference"]
    return [f"results/{SESSION}/evals/{m}/seed0/metrics.json" for m in names]


def _start(args, cwd: Path, env: dict) -> tuple[subprocess.Popen, Path]:
    log = cwd / "snakemake.out"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            snakemake_cmd(*args, cwd=cwd), cwd=cwd, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return proc, log


def _finish(proc: subprocess.Popen, log: Path, deadline: float) -> SimpleNamespace:
    try:
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    text = log.read_text(errors="replace")
    return SimpleNamespace(
        rc=proc.returncode, out=text, jobs={m[0]: Path(m[1]) for m in SUBMITTED.findall(text)}
    )


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The three runs (module docstring), started together; their results and timing."""
    config = _config()
    dirs = {k: tmp_path_factory.mktemp(k) for k in ("slurm_run", "local_run", "failing_run")}
    cfg = write_config(dirs["slurm_run"] / "config.yaml", config)
    bad = dirs["failing_run"] / "text.nwb"
    bad.write_text("not an NWB file\n")
    bad_cfg = write_config(
        dirs["failing_run"] / "config.yaml",
        {"methods": ["lrRNN"], "seeds": [0], "sessions": [{"id": "bad-input", "local": str(bad)}]},
    )
    env = {k: v for k, v in cluster.env.items() if not k.startswith("DISRNN_SLURM_")}
    env.update(
        PYTHONUNBUFFERED="1",
        DISRNN_SLURM_PARTITION=PARTITION,
        DISRNN_SLURM_GPU_PARTITION=TRAIN_PARTITION,
    )
    targets = _metrics_paths(config)  # the reports add nothing SLURM-specific, only time
    plan = snakemake(
        *targets, "--dry-run", "--configfile", str(cfg), cwd=dirs["slurm_run"], env=env
    )
    assert plan.returncode == 0, plan.stderr[-3000:]
    profile = ["--workflow-profile", str(SLURM_PROFILE.parent), *SLURM_TEST_ARGS]
    start = time.monotonic()
    started = {
        "slurm": _start([*targets, *profile, "--configfile", str(cfg)], dirs["slurm_run"], env),
        "failing": _start([*profile, "--configfile", str(bad_cfg)], dirs["failing_run"], env),
        "local": _start(
            [*targets, "--cores", "2", "--configfile", str(cfg)],
            dirs["local_run"],
            {k: v for k, v in os.environ.items() if k != "SLURM_CONF"},
        ),
    }
    done = {k: _finish(*v, start + RUN_TIMEOUT) for k, v in started.items()}
    return SimpleNamespace(
        config=config, dirs=dirs, bad=bad, plan=plan.stdout, seconds=time.monotonic() - start,
        **done,
    )  # fmt: skip


def _rule_of(comment: str, rules) -> str:
    """The rule of a job from the plugin's sbatch comment ``rule_<rule>[_wildcards_...]``."""
    hits = [
        r for r in rules if comment == f"rule_{r}" or comment.startswith(f"rule_{r}_wildcards_")
    ]
    assert len(hits) == 1, (comment, rules)
    return hits[0]


def test_every_job_ran_through_sbatch_on_its_partition(runs, cluster):
    slurm = runs.slurm
    assert slurm.rc == 0, slurm.out[-5000:]
    # the plan: every job of the dry run (to the metrics; no local rule among them)
    planned = collections.Counter(r for r, _ in dry_run_jobs(runs.plan))
    assert planned["fit"] == 1 and planned["fit_posthoc"] == 1, planned
    records = {jobid: cluster.job(jobid) for jobid in slurm.jobs}
    ran = collections.Counter(_rule_of(j["Comment"], planned) for j in records.values())
    assert ran == planned, slurm.out[-5000:]
    resources = yaml.safe_load(DEFAULT_CONFIG.read_text())["resources"]
    for jobid, job in records.items():
        rule = _rule_of(job["Comment"], planned)
        assert job["JobState"] == "COMPLETED", (jobid, job)
        assert job["WorkDir"] == str(runs.dirs["slurm_run"])
        training = rule in ("fit", "select")
        assert job["Partition"] == (TRAIN_PARTITION if training else PARTITION), job
    # the config's resources reach sbatch: the small config's fit block
    fit = next(j for j in records.values() if _rule_of(j["Comment"], planned) == "fit")
    want = runs.config["resources"]["fit"]
    assert fit["TimeLimit"] == f"00:{want['runtime']:02d}:00"
    assert fit["MinMemoryNode"] == f"{want['mem_mb']}M" and fit["NumCPUs"] == str(want["threads"])
    assert resources["fit"]["mem_mb"] != want["mem_mb"]  # so the check above can tell


def test_cluster_metrics_equal_the_local_run(runs):
    assert runs.local.rc == 0, runs.local.out[-5000:]
    assert runs.slurm.rc == 0, runs.slurm.out[-5000:]
    for rel in _metrics_paths(runs.config):
        here, there = (
            dict(numbers_of(json.loads((runs.dirs[k] / rel).read_text())))
            for k in ("local_run", "slurm_run")
        )
        # wall-clock timings differ between any two runs; every other number is the same
        timings = {k for k in here if k.endswith("seconds")}
        assert here.keys() == there.keys(), rel
        assert len(here) - len(timings) > 10, (rel, sorted(here))
        for key in here.keys() - timings:
            assert there[key] == pytest.approx(here[key], rel=1e-6, abs=1e-9), (rel, key)


def test_a_job_failing_on_the_cluster_leaves_its_error_in_its_job_log(runs, cluster):
    failing = runs.failing
    assert failing.rc != 0, failing.out[-3000:]
    retries = yaml.safe_load(SLURM_PROFILE.read_text())["retries"]
    assert len(failing.jobs) == 1 + retries, failing.out[-5000:]  # the profile's retries
    for jobid, log in failing.jobs.items():
        job = cluster.job(jobid)
        assert job["JobState"] == "FAILED" and job["Comment"].startswith("rule_bin_session"), job
        # kept by the plugin for failed jobs, and named in Snakemake's error report
        assert log.is_file(), (log, failing.out[-3000:])
        text = log.read_text(errors="replace")
        assert "ValueError" in text and "is not an NWB file" in text, text[-3000:]
        assert str(runs.bad) in text
        assert re.search(rf"^\s+log: .*{re.escape(str(log))}", failing.out, re.M), failing.out
    assert "Error in rule bin_session" in failing.out
