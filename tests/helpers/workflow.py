"""The one snakemake runner of the tests and its config helpers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SNAKEFILE = ROOT / "Snakefile"
DEFAULT_CONFIG = ROOT / "config" / "config.yaml"
EXAMPLES = sorted((ROOT / "config" / "examples").glob("*.yaml"))
SMALL_CONFIG = ROOT / "tests" / "config_small.yaml"
SLURM_PROFILE = ROOT / "workflow" / "profiles" / "slurm" / "config.yaml"


def snakemake_cmd(*args: str, cwd: Path) -> list[str]:
    """``snakemake --snakefile <repo>/Snakefile --directory cwd ARGS`` as an argv list."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE)]
    return [*cmd, "--directory", str(cwd), *args]


def snakemake(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300):
    """Run :func:`snakemake_cmd`; return the result."""
    return subprocess.run(
        snakemake_cmd(*args, cwd=cwd),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def dry_run_jobs(stdout: str) -> list[tuple[str, str]]:
    """(rule, first output) of every job a dry run lists, sorted."""
    jobs, rule = [], None
    for line in stdout.splitlines():
        m = re.match(r"^(?:local)?rule (\S+):$", line)
        if m:
            if rule is not None:
                jobs.append((rule, ""))
            rule = m.group(1)
            continue
        m = re.match(r"^\s+output: ([^,]+)", line)
        if m and rule is not None:
            jobs.append((rule, m.group(1).strip()))
            rule = None
    if rule is not None:
        jobs.append((rule, ""))
    return sorted(jobs)


def job_counts(stdout: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rule, _ in dry_run_jobs(stdout):
        counts[rule] = counts.get(rule, 0) + 1
    return counts


def numbers_of(tree, prefix=""):
    """(key path, value) of every number in a nested dict/list of metrics."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from numbers_of(v, f"{prefix}{k}.")
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from numbers_of(v, f"{prefix}{i}.")
    elif isinstance(tree, int | float) and not isinstance(tree, bool):
        yield prefix.rstrip("."), tree


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def small_config() -> dict:
    return yaml.safe_load(SMALL_CONFIG.read_text())
