"""The README's main command, timed: `snakemake --cores 8` on the built-in default config
in a fresh folder, then the group latent R^2 its reports show.

Prints the wall and CPU seconds (and page faults) of the whole run (Snakemake and every
job it started), then per default session a table of group latent R^2 (mean and per
seed over the config's seeds) for every method, and DisRNN's margin over each baseline
(lrRNN, lrRNN+ICA, LINT, bdRNN, DisRNN-full; the issue's target: DisRNN >= 0.85 and
>= 0.15 above every one of them), with each session's selection verdict, and where the
CPU went: each job's log ends with its CPU seconds and peak memory
(``disrnn.logs.resource_line``), summed here per step and listed for the costliest jobs.

    python benchmarks/default_run.py --out /tmp/default_run   # about 7-8 min on 2 cores

The run is the README's command exactly (the default config is found beside the
Snakefile); `--out` must not exist or be empty, so nothing is reused from an earlier run.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from disrnn.logs import RESOURCE_PREFIX  # the start of the line every job log ends with

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ("lrRNN", "lrRNN+ICA", "LINT", "bdRNN", "DisRNN-full")


def run(out: Path, cores: int) -> tuple[float, resource.struct_rusage]:
    """Run the default config in ``out``; (wall s, resource use of Snakemake and its jobs)."""
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise SystemExit(f"--out {out} is not empty; give a new folder")
    cmd = ["snakemake", "--snakefile", str(ROOT / "Snakefile"), "--cores", str(cores)]
    t0 = time.perf_counter()
    with open(out / "snakemake.log", "w") as log:
        rc = subprocess.run(cmd, cwd=out, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"snakemake failed (rc {rc}); see {out / 'snakemake.log'}")
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN)


def scores(results: Path) -> dict[str, dict[str, list[float]]]:
    """session -> method -> group latent R^2 per seed (seed order), from metrics.json."""
    out: dict[str, dict[str, list[float]]] = {}
    for path in sorted(results.glob("*/evals/*/seed*/metrics.json")):
        metrics = json.loads(path.read_text())
        value = metrics.get("group_latent_r2")
        if isinstance(value, (int, float)):
            session, method = path.parts[-5], path.parts[-3]
            out.setdefault(session, {}).setdefault(method, []).append(float(value))
    return out


def verdict(results: Path, session: str) -> str:
    path = results / session / "selection" / "selection.json"
    if not path.is_file():
        return "no selection"
    return json.loads(path.read_text())["sentence"]


_RESOURCES = re.compile(re.escape(RESOURCE_PREFIX) + r" ([\d.]+) s .*peak memory (\d+) MiB")


def job_resources(logs: Path) -> list[tuple[str, str, float, int]]:
    """(step, job log relative to ``logs``, CPU s, peak MiB) of every job log that ends
    with a resource line; the step is the log's folder under the session (fit,
    evaluate) or its file name (simulate, bin, select), ``report`` for the reports and
    ``fetch`` for the DANDI downloads."""
    out = []
    for path in sorted(logs.rglob("*.log")):
        lines = path.read_text(errors="replace").splitlines()
        m = _RESOURCES.search(lines[-1]) if lines else None
        if m is None:
            continue
        rel = path.relative_to(logs)
        step = rel.parts[1] if len(rel.parts) > 2 else rel.stem
        if rel.parts[0] == "reports":
            step = "report"
        elif rel.parts[0] == "dandi":  # logs/dandi/<dandiset>/<version>/<asset>.log
            step = "fetch"
        elif step == "evaluate" and rel.parts[2] == "reference":
            step = "reference"
        out.append((step, str(rel), float(m.group(1)), int(m.group(2))))
    return out


def print_resources(logs: Path, top: int = 8) -> None:
    jobs = job_resources(logs)
    if not jobs:
        print(f"\nno job log under {logs} ends with a resource line")
        return
    total = sum(j[2] for j in jobs)
    print(f"\nCPU of the jobs (their logs): {total:.0f} s in {len(jobs)} jobs")
    print("| step | jobs | CPU s | share | peak MiB |")
    print("|---|---|---|---|---|")
    steps: dict[str, list] = {}
    for job in jobs:
        steps.setdefault(job[0], []).append(job)
    for step, js in sorted(steps.items(), key=lambda kv: -sum(j[2] for j in kv[1])):
        cpu = sum(j[2] for j in js)
        print(f"| {step} | {len(js)} | {cpu:.0f} | {cpu / total:.0%} | {max(j[3] for j in js)} |")
    print(f"costliest {top} jobs: " + "; ".join(
        f"{j[1]} {j[2]:.0f} s" for j in sorted(jobs, key=lambda j: -j[2])[:top]))  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="a new, empty folder to run in")
    p.add_argument("--cores", type=int, default=8, help="snakemake --cores (README: 8)")
    p.add_argument(
        "--results", type=Path, default=None,
        help="only print the tables of an existing run's results folder (no run)",
    )  # fmt: skip
    args = p.parse_args(argv)
    if args.results is None:
        wall, use = run(args.out, args.cores)
        print(f"snakemake --cores {args.cores}: wall {wall:.0f} s ({wall / 60:.1f} min), "
              f"CPU {use.ru_utime + use.ru_stime:.0f} s ({use.ru_utime:.0f} s user + "
              f"{use.ru_stime:.0f} s system), {use.ru_minflt / 1e6:.1f} M page faults")  # fmt: skip
        results = args.out / "results"
    else:
        results = args.results
    print_resources(results.parent / "logs")
    for session, methods in scores(results).items():
        print(f"\n{session} (selection: {verdict(results, session)})")
        print("| method | group latent R^2 | per seed | DisRNN minus it |")
        print("|---|---|---|---|")
        dis = statistics.mean(methods["DisRNN"]) if "DisRNN" in methods else float("nan")
        for method, values in sorted(methods.items()):
            mean = statistics.mean(values)
            gap = f"{dis - mean:+.3f}" if method in BASELINES else ""
            per = ", ".join(f"{v:.3f}" for v in values)
            print(f"| {method} | {mean:.3f} | {per} | {gap} |")
        margins = [dis - statistics.mean(methods[m]) for m in BASELINES if m in methods]
        if margins:
            ok = dis >= 0.85 and min(margins) >= 0.15
            print(f"DisRNN {dis:.3f}, smallest margin {min(margins):+.3f}: "
                  f"target (>= 0.85 and >= 0.15 above every baseline) "
                  f"{'met' if ok else 'not met'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
