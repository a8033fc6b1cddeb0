"""Does the rotation search find the true partition? Its starts, replayed on many sessions.

    python benchmarks/rotation_starts.py --seeds 0-59 --starts 32,64 --jobs 2
    python benchmarks/rotation_starts.py --seeds 10,44 --starts 64,256 --keep 4,8
    python benchmarks/rotation_starts.py --seeds 0-29 --starts 128 --steps 10 --keep 8
    python benchmarks/rotation_starts.py --seeds 0-59 --starts 64,64 --screen-bins 256,128 --cache C
    python benchmarks/rotation_starts.py --seeds 60-119 --starts 64,32 --rank-on fit,score --cache C

For each seed s: simulate ``--preset`` with seed s (split as ``benchmarks/synthetic.py``
does) and run DisRNN's beta = 0 pre-fit with seed s, exactly as a DisRNN fit would, up to
its rotation search (the search's inputs are taken from ``disrnn.fit.train`` when the
fit calls it, and the fit is stopped there). Then replay the search on those inputs
(the training posterior means, sigma_q, the fit's generator state) once per ``--starts``
value (with the matching ``--keep``, ``--steps``, ``--screen-bins``, ``--rank-on`` and
``--rank-bins``; the other settings
are the fit's; ``--cache DIR`` keeps each seed's inputs for the next run), and score each
rotation R by the group latent R^2 of the rotated pre-fit latents R mu against the true
latents (per group, a linear regression with intercept; the better of the two ways to
match fitted to true groups). A rotation in a wrong partition scores below the others
(0.73-0.92 against 0.92-0.97 on paper-gaussian seeds 0-59; seed 10's 0.916 became a full
fit of 0.833), counted below ``--wrong`` (default 0.92, the issue's floor).

Prints one line per seed (score PC and R^2 per search) and a table: wrong partitions
and search seconds per search setting. One torch thread per worker. A benchmark, not a
test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from synthetic import session_dataset  # noqa: E402 (benchmarks/synthetic.py, beside this script)


class _Stop(Exception):
    """Raised in place of the fit's rotation search, once its inputs are saved."""


def search_inputs(preset: str, seed: int) -> dict:
    """The rotation search inputs of seed ``seed``'s DisRNN 3 + 3 fit, and the true
    latents of its training bins: {mus, log_sigmas, groups, state, search, truth}."""
    import disrnn.fit.train as train
    from disrnn.fit.config import FitConfig
    from disrnn.fit.tensors import check_split, dataset_kind, trial_arrays

    ds = session_dataset(preset, seed)
    config = FitConfig.create("DisRNN", groups=[3, 3])
    saved: dict = {}

    def capture(mus, log_sigmas, groups, generators, **search):
        saved.update(
            mus=[m.detach().clone() for m in mus], log_sigmas=list(log_sigmas), groups=groups,
            state=generators[0].get_state(), search=search,
        )  # fmt: skip
        raise _Stop

    real, train.pc_rotations = train.pc_rotations, capture
    try:
        with tempfile.TemporaryDirectory() as tmp:
            train.fit(ds, config, Path(tmp) / "fit", seed=seed, progress=False)
    except _Stop:
        pass
    finally:
        train.pc_rotations = real
    history = config.resolve(dataset_kind(ds), 0.02).history
    arrays = trial_arrays(ds, history)
    sel = arrays["valid"] & (check_split(ds) == "train")[:, None]
    truth = ds["true_latents"].transpose("trial", "time", "latent").values
    saved["truth"] = truth[:, arrays["start"] :][sel]
    if saved["truth"].shape[0] != saved["mus"][0].shape[0]:
        raise RuntimeError("the true latents do not line up with the search's bins")
    return saved


def _r2(x: np.ndarray, y: np.ndarray) -> float:
    """R^2 of the least-squares fit of y (bin, k) from x (bin, j) with an intercept."""
    x1 = np.c_[x, np.ones(len(x))]
    coef, *_ = np.linalg.lstsq(x1, y, rcond=None)
    return float(1 - (y - x1 @ coef).var(0).sum() / y.var(0).sum())


def group_r2(mu: np.ndarray, truth: np.ndarray, rot: np.ndarray, groups=(3, 3)) -> float:
    """Group latent R^2 of the rotated latents mu R^T against the true latents, the
    better of the two matchings of two groups."""
    z = mu @ rot.T
    a = groups[0]
    first, second = slice(0, a), slice(a, None)
    same = (_r2(z[:, first], truth[:, first]) + _r2(z[:, second], truth[:, second])) / 2
    swap = (_r2(z[:, first], truth[:, second]) + _r2(z[:, second], truth[:, first])) / 2
    return max(same, swap)


def run_seed(task: dict) -> list[dict]:
    import torch

    from disrnn.fit.rotation import pc_rotations

    torch.set_num_threads(1)
    cache = task["cache"] and Path(task["cache"]) / f"{task['preset']}-{task['seed']}.pt"
    if cache and cache.exists():
        inputs = torch.load(cache, weights_only=False)
    else:
        inputs = search_inputs(task["preset"], task["seed"])
        if cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
            torch.save(inputs, cache.with_suffix(".tmp"))
            cache.with_suffix(".tmp").replace(cache)
    mu = inputs["mus"][0].double().numpy()
    rows = []
    settings = zip(task["starts"], task["keep"], task["steps"], task["screen"], strict=True)
    for i, (starts, keep, steps, screen) in enumerate(settings):
        generator = torch.Generator()
        generator.set_state(inputs["state"])
        search = {**inputs["search"], "starts": starts, "keep": keep}
        if steps is not None:
            search["steps"] = steps
        if screen is not None:
            search["screen_bins"] = screen
        search["rank_on"] = task["rank_on"][i]
        if task["rank_bins"][i]:
            search["rank_bins"] = task["rank_bins"][i]
        t0 = time.perf_counter()
        ((rot, pc),) = pc_rotations(
            inputs["mus"], inputs["log_sigmas"], inputs["groups"], [generator], **search
        )
        seconds = time.perf_counter() - t0
        r2 = group_r2(mu, inputs["truth"], rot.double().numpy(), inputs["groups"])
        rows.append({"setting": i, "seed": task["seed"], "starts": starts, "keep": keep,
                     "steps": search["steps"], "screen": screen or "all", "pc": pc,
                     "rank_on": f"{search['rank_on']} {search.get('rank_bins') or 'all'}",
                     "r2": r2, "seconds": seconds})  # fmt: skip
    return rows


def _seeds(text: str) -> list[int]:
    """'0-59' or '10,44' -> seeds."""
    if "-" in text:
        first, last = (int(v) for v in text.split("-"))
        return list(range(first, last + 1))
    return [int(v) for v in text.split(",")]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="paper-gaussian")
    p.add_argument("--seeds", default="0-29", help="'0-59' or '10,44'")
    p.add_argument("--starts", default="32,64", help="search starts to compare")
    p.add_argument("--keep", default=None, help="kept starts per setting (default: 4 each)")
    p.add_argument("--steps", default=None, help="screen steps per setting (default: the fit's)")
    p.add_argument("--screen-bins", default=None, help="screen bins per setting (default: all)")
    p.add_argument("--rank-on", default=None, help="'score' or 'fit' per setting (default: score)")
    p.add_argument("--rank-bins", default=None, help="score bins ranking the screen, per setting")
    p.add_argument("--cache", default=None, help="folder keeping each seed's search inputs")
    p.add_argument("--wrong", type=float, default=0.92, help="R^2 below: wrong partition")
    p.add_argument("--jobs", type=int, default=2, help="worker processes")
    args = p.parse_args(argv)
    starts = [int(v) for v in args.starts.split(",")]
    keep = [int(v) for v in args.keep.split(",")] if args.keep else [4] * len(starts)
    steps = [int(v) for v in args.steps.split(",")] if args.steps else [None] * len(starts)
    screen = (
        [int(v) for v in args.screen_bins.split(",")] if args.screen_bins else [None] * len(starts)
    )
    rank_on = args.rank_on.split(",") if args.rank_on else ["score"] * len(starts)
    rank_bins = [int(v) for v in args.rank_bins.split(",")] if args.rank_bins else [0] * len(starts)
    if len({len(keep), len(steps), len(screen), len(rank_on), len(rank_bins), len(starts)}) > 1:
        p.error(
            "--keep, --steps, --screen-bins, --rank-on and --rank-bins need one value per "
            "--starts value"
        )
    tasks = [{"preset": args.preset, "seed": s, "starts": starts, "keep": keep, "steps": steps,
              "screen": screen, "rank_on": rank_on, "rank_bins": rank_bins, "cache": args.cache}
             for s in _seeds(args.seeds)]  # fmt: skip
    t0 = time.perf_counter()
    rows: list[dict] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for result in pool.map(run_seed, tasks):
            rows += result
            cells = ", ".join(f"{r['starts']}x{r['steps']}/{r['keep']} on {r['screen']}, by {r['rank_on']}: pc {r['pc']:.3f} R2 {r['r2']:.3f}"
                              for r in result)  # fmt: skip
            print(f"seed {result[0]['seed']}: {cells}", flush=True)
    print(f"\n{args.preset}, seeds {args.seeds}, wall {time.perf_counter() - t0:.0f} s\n")
    head = (
        f"| starts | steps | keep | screen bins | ranked on | wrong partitions (R2 < {args.wrong:.2f}) | "
        "min R2 | search s |"
    )
    print(head)
    print("|---|---|---|---|---|---|---|---|")
    for i in range(len(starts)):
        sel = [r for r in rows if r["setting"] == i]
        wrong = [r["seed"] for r in sel if r["r2"] < args.wrong]
        print(
            f"| {sel[0]['starts']} | {sel[0]['steps']} | {sel[0]['keep']} | {sel[0]['screen']} | "
            f"{sel[0]['rank_on']} | "
            f"{len(wrong)} "
            f"{wrong if wrong else ''} | {min(r['r2'] for r in sel):.3f} | "
            f"{np.mean([r['seconds'] for r in sel]):.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
