"""Seconds per DisRNN fit when S seeds are fitted together, and how a fit's time grows.

    python benchmarks/speed.py                         # every part below
    python benchmarks/speed.py --parts paper --seeds 1,3,10
    python benchmarks/speed.py --parts mcmaze --seeds 1
    python benchmarks/speed.py --parts scaling
    python benchmarks/speed.py --parts pc
    python benchmarks/speed.py --parts history --histories 10,20,40
    python benchmarks/speed.py --parts posterior

Parts (each prints a table; the machine's load is printed with it):

- ``paper``: DisRNN with the package defaults on the paper's synthetic session
  (``paper-gaussian`` seed 0, split as ``benchmarks/synthetic.py`` does), seeds 0..S-1
  fitted together by :func:`disrnn.fit.train.fit_seeds`, for each S of ``--seeds``:
  wall seconds, seconds per seed, and the wall against S = 1's.
- ``mcmaze``: a simulated session the size of NLB's MC_Maze (182 units, 2,300 trials x
  35 bins of 20 ms, spike counts; ``lorenz-thomas`` resized), 60/20/20 trials, DisRNN
  with the spike-count defaults.
- ``scaling``: one DisRNN fit of a fixed short budget (``--scaling-epochs``; the
  rotation search sized for it) on spike sessions of growing bins (at 60 units) and
  units (at 400 trials x 35 bins): seconds per epoch of the beta = 0 pre-fit and of
  the PC phase, and the rotation search's seconds.
- ``pc``: the PC estimator alone (``disrnn.losses.partial_correlation``, forward and
  backward under ``torch.func.vmap``, the rotation search's inner step) for S starts of
  256 bins and 3 + 3 latents of sd 1 and 3 (sigma_q 0.4): milliseconds per start, the
  least of 5 repeats. Run it with ``PYTHONPATH=<another checkout>`` to time that
  checkout's estimator with the same script.
- ``history``: the memory a fit's history takes. One DisRNN 3 + 3 fit of 2 epochs per
  phase on a spike session of MC_Maze's units (182 units, 400 trials x 140 bins, 60/20/20;
  ``lorenz-thomas`` resized) for each L of ``--histories`` (200 ms of 5 ms bins is L = 40),
  each in a fresh process: its wall seconds and peak resident memory (``ru_maxrss``).
- ``posterior``: the smoothing posterior's encoder (``disrnn.models.smoothing.
  SmoothingEncoder`` with the defaults of ``disrnn.evaluation.smoothing_config``: a kernel
  of 1 s each side, the context GRU of 64 units) on one batch of 16 trials of 6.2 s (ALM's
  6 s window and 0.2 s of history bins) and 49 held-in units, 8 latents, at bins of 20,
  10 and 5 ms: milliseconds per forward and backward pass, the least of 3 repeats, with
  the GRU stepping every ``CONTEXT_BIN_SECONDS`` (the default) and every bin.

One fit at a time, with ``--threads`` torch threads (default 1): a stack of S seeds uses
one per seed up to that many (``disrnn.fit.threads``), so S = 1 always runs on one. A
benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr
from synthetic import session_dataset  # noqa: E402 (benchmarks/synthetic.py, beside this script)


def markdown_table(columns: list[str], rows: list[list]) -> str:
    """A markdown table of ``rows`` (lists of cells) under ``columns``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def simulated(preset: str, seed: int = 0, split: str = "paper", **overrides) -> xr.Dataset:
    """``benchmarks/synthetic.py``'s session Dataset; ``split="60/20/20"`` relabels its
    trials 60/20/20 (train, val, test) by trial index instead of the paper's split."""
    ds = session_dataset(preset, seed, **overrides)
    if split == "paper":
        return ds
    idx = np.arange(ds.sizes["trial"])
    labels = np.where(idx % 5 < 3, "train", np.where(idx % 5 == 3, "val", "test"))
    return ds.assign_coords(split=("trial", labels))


def timed_fit(ds: xr.Dataset, seeds: list[int], options: dict, workdir: Path) -> dict:
    """Fit DisRNN with ``seeds`` together; wall seconds and the first seed's phases."""
    import json

    from disrnn.fit.config import FitConfig
    from disrnn.fit.train import fit_seeds

    config = FitConfig.from_options("DisRNN", options)
    tag = "-".join(map(str, seeds))
    outs = [workdir / f"S{len(seeds)}-{tag}" / f"seed{s}" for s in seeds]
    t0 = time.perf_counter()
    fit_seeds(ds, config, outs, seeds, device="cpu", progress=False)
    wall = time.perf_counter() - t0
    info = json.loads((outs[0] / "fit_info.json").read_text())
    pre = info.get("pretrain", {})
    return {
        "wall": wall,
        "per_seed": wall / len(seeds),
        "pre_epochs": pre.get("epochs_run"),
        "pre_s_per_epoch": pre.get("train_seconds", np.nan) / max(pre.get("epochs_run") or 1, 1),
        "rotation_s": pre.get("rotation_seconds", np.nan) * len(seeds),
        "epochs": info.get("epochs_run"),
        "pc_s_per_epoch": info["train_seconds"] / max(info.get("epochs_run") or 1, 1),
        "bins": info["n_train_bins"],
    }


def part_paper(seed_counts, workdir) -> None:
    ds = simulated("paper-gaussian", 0)
    rows, base = [], None
    for S in seed_counts:
        r = timed_fit(ds, list(range(S)), {"groups": [3, 3]}, workdir)
        base = r["wall"] if base is None and S == 1 else base
        ratio = r["wall"] / base if base else float("nan")
        rows.append([S, f"{r['wall']:.1f}", f"{r['per_seed']:.1f}", f"{ratio:.2f}",
                     f"{r['rotation_s']:.1f}"])  # fmt: skip
        print(f"paper S={S}: {r}", flush=True)
    print("\npaper-gaussian (20 units, 10 train trials x 100 bins), DisRNN 3 + 3, defaults\n")
    print(markdown_table(["S", "wall s", "s per seed", "wall / wall(S=1)", "rotation s"], rows))


def part_mcmaze(seed_counts, workdir) -> None:
    ds = simulated("lorenz-thomas", 0, split="60/20/20", n_units=182, n_trials=2300,
                   trial_length=35)  # fmt: skip
    rows = []
    for S in seed_counts:
        r = timed_fit(ds, list(range(S)), {"groups": [3, 3]}, workdir)
        rows.append([S, r["bins"], f"{r['wall']:.1f}", f"{r['per_seed']:.1f}",
                     f"{r['pre_s_per_epoch']:.2f}", r["pre_epochs"], f"{r['rotation_s']:.1f}",
                     f"{r['pc_s_per_epoch']:.2f}", r["epochs"]])  # fmt: skip
        print(f"mcmaze S={S}: {r}", flush=True)
    print("\nMC_Maze size (182 units, 2,300 trials x 35 bins, spike counts), DisRNN 3 + 3\n")
    cols = ["S", "train bins", "wall s", "s per seed", "pre-fit s/epoch", "pre-fit epochs",
            "rotation s", "PC phase s/epoch", "PC epochs"]  # fmt: skip
    print(markdown_table(cols, rows))


def part_scaling(epochs: int, workdir) -> None:
    opts = {"groups": [3, 3], "epochs": epochs, "patience": epochs}
    grid = [(n_trials, 60) for n_trials in (200, 400, 800, 1600)]
    grid += [(400, n_units) for n_units in (30, 120, 240)]
    rows = []
    for n_trials, n_units in grid:
        ds = simulated("lorenz-thomas", 0, split="60/20/20", n_units=n_units,
                       n_trials=n_trials, trial_length=35)  # fmt: skip
        r = timed_fit(ds, [0], opts, workdir / f"{n_trials}x{n_units}")
        rows.append([n_trials * 35, r["bins"], n_units, f"{r['pre_s_per_epoch']:.3f}",
                     f"{r['rotation_s']:.1f}", f"{r['pc_s_per_epoch']:.3f}",
                     f"{r['wall']:.1f}"])  # fmt: skip
        print(f"scaling {n_trials} trials x {n_units} units: {r}", flush=True)
    print(f"\nOne DisRNN fit of {epochs} epochs per phase (spike counts, L = 10, learned kernel)\n")
    cols = ["bins", "train bins", "units", "pre-fit s/epoch", "rotation s",
            "PC phase s/epoch", "wall s"]  # fmt: skip
    print(markdown_table(cols, rows))


def part_pc() -> None:
    import torch
    from torch.func import vmap

    from disrnn.losses import partial_correlation

    gen = torch.Generator().manual_seed(0)
    pc = vmap(lambda m, e: partial_correlation(m + 0.4 * e, m, float(np.log(0.4)), (3, 3), 5000))
    rows = []
    for scale in (1.0, 3.0):
        for S in (1, 8, 32):
            mu = (scale * torch.randn(S, 256, 6, generator=gen)).requires_grad_()
            eps = torch.randn(S, 256, 6, generator=gen)
            reps = max(3, 32 // S)
            best = np.inf
            for _ in range(5):
                t0 = time.perf_counter()
                for _ in range(reps):
                    pc(mu, eps).sum().backward()
                    mu.grad = None
                best = min(best, (time.perf_counter() - t0) / reps)
            rows.append([scale, S, f"{best * 1e3:.1f}", f"{best / S * 1e3:.2f}"])
            print(f"pc sd {scale} S={S}: {best * 1e3:.2f} ms", flush=True)
    print("\nPC forward + backward, 256 bins, 3 + 3 latents, vmapped over S starts\n")
    print(markdown_table(["latent sd", "S", "ms per call", "ms per start"], rows))


def _history_fit(task: tuple) -> tuple[float, float]:
    """(wall s, peak resident GB) of one short fit, run in a fresh worker process."""
    import resource

    import torch

    history, threads, workdir = task
    torch.set_num_threads(threads)
    ds = simulated("lorenz-thomas", 0, split="60/20/20", n_units=182, n_trials=400,
                   trial_length=140)  # fmt: skip
    opts = {"groups": [3, 3], "epochs": 2, "patience": 2, "history": history}
    r = timed_fit(ds, [0], opts, Path(workdir))
    return r["wall"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def part_history(histories, threads, workdir) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    rows = []
    for L in histories:
        spawn = multiprocessing.get_context("spawn")  # a fresh process: its own peak
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            wall, peak = pool.submit(_history_fit, (L, threads, str(workdir / f"L{L}"))).result()
        rows.append([L, f"{wall:.1f}", f"{peak:.2f}"])
        print(f"history L={L}: wall {wall:.1f} s, peak {peak:.2f} GB", flush=True)
    print("\nOne DisRNN fit of 2 epochs per phase, 182 units, 400 trials x 140 bins\n")
    print(markdown_table(["L", "wall s", "peak resident GB"], rows))


def part_posterior() -> None:
    import torch

    from disrnn.evaluation.smoothing_config import (
        CONTEXT_BIN_SECONDS,
        CONTEXT_UNITS,
        INIT_SHORT_WEIGHT,
        INIT_TAU_SECONDS,
        context_stride,
        default_lags,
    )
    from disrnn.models.smoothing import SmoothingEncoder

    rows = []
    for bw in (0.02, 0.01, 0.005):
        n_time, lags = round(6.2 / bw), default_lags(bw)
        gen = torch.Generator().manual_seed(0)
        f, obs = torch.rand(16, n_time, 49, generator=gen), torch.ones(16, n_time)
        for context_bin in (CONTEXT_BIN_SECONDS, bw):
            r = context_stride(context_bin, bw)
            enc = SmoothingEncoder(49, 8, lags, True, generator=gen, context=CONTEXT_UNITS,
                                   tau_short=INIT_TAU_SECONDS / bw, short_weight=INIT_SHORT_WEIGHT,
                                   context_stride=r)  # fmt: skip
            best = np.inf
            for _ in range(3):
                t0 = time.perf_counter()
                enc.coords(f, obs).square().sum().backward()
                best = min(best, time.perf_counter() - t0)
            rows.append([bw * 1e3, n_time, 2 * lags + 1, r, f"{best * 1e3:.0f}"])
            print(f"posterior {bw * 1e3:g} ms, stride {r}: {best * 1e3:.0f} ms", flush=True)
            if r == 1:
                break
    print("\nSmoothing posterior encoder, forward + backward, 16 trials of 6.2 s, 49 units\n")
    print(markdown_table(["bin ms", "bins", "kernel lags", "GRU stride", "ms per batch"], rows))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default="paper,mcmaze,scaling,pc,history,posterior")
    p.add_argument("--seeds", default="1,3,10", help="S values of the paper part")
    p.add_argument("--mcmaze-seeds", default="1,3", help="S values of the mcmaze part")
    p.add_argument("--scaling-epochs", type=int, default=10)
    p.add_argument("--histories", default="10,20,40", help="L values of the history part")
    p.add_argument("--workdir", default=None, help="keep the fits here")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    print(
        f"load average {os.getloadavg()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{args.threads} thread(s)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir or tmp)
        t0 = time.perf_counter()
        for part in args.parts.split(","):
            if part == "paper":
                part_paper([int(s) for s in args.seeds.split(",")], workdir / "paper")
            elif part == "mcmaze":
                part_mcmaze([int(s) for s in args.mcmaze_seeds.split(",")], workdir / "mcmaze")
            elif part == "scaling":
                part_scaling(args.scaling_epochs, workdir / "scaling")
            elif part == "pc":
                part_pc()
            elif part == "history":
                histories = [int(v) for v in args.histories.split(",")]
                part_history(histories, args.threads, workdir / "history")
            elif part == "posterior":
                part_posterior()
            else:
                valid = "paper, mcmaze, scaling, pc, history, posterior"
                p.error(f"unknown part {part!r}; valid: {valid}")
        print(f"\nwall {time.perf_counter() - t0:.0f} s, load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
