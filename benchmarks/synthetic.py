"""The paper's synthetic benchmark with our simulator: every method x several seeds.

    python benchmarks/synthetic.py                          # paper-gaussian, 5 seeds
    python benchmarks/synthetic.py --preset paper-poisson --seeds 5 --out poisson.md
    python benchmarks/synthetic.py --preset coupled-gaussian  # the non-factorising control

For each seed s: simulate the preset with seed s; split the trials (even trials train,
odd trials test, every fifth odd trial validation for early stopping); fit every method
with seed s (lrRNN+ICA and LINT transform that seed's lrRNN via ``init_from``); evaluate
on the test trials with :func:`disrnn.evaluation.evaluate`; print one table of
mean +- sd over seeds: PC, TC, group latent R^2, component latent R^2, W and
sub-connectivity Pearson r, test log-likelihood per bin and neuron, fit seconds.

Fits run in ``--jobs`` worker processes with one torch thread each.
This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import xarray as xr
from tables import markdown_table  # noqa: E402 (benchmarks/tables.py, beside this script)

from disrnn.fit.config import METHODS  # noqa: E402 (the registry: no torch)

METHOD_ORDER = list(METHODS)
COLUMNS = [
    ("pc", "PC"),
    ("tc", "TC"),
    ("group_latent_r2", "group R2"),
    ("component_latent_r2", "comp R2"),
    ("W_pearson", "W r"),
    ("Wsub_pearson", "W_g r"),
    ("test_ll_per_bin_neuron", "test LL"),
    ("seconds", "fit s"),
]


def session_dataset(preset: str, seed: int, **overrides) -> xr.Dataset:
    """Simulate ``preset`` with ``seed`` and build the Dataset of docs/design.md."""
    from disrnn.data.io import DIMS
    from disrnn.simulate import simulate

    s = simulate(preset, seed=seed, **overrides)
    n_trial, n_time, n_unit = s.activity.shape
    idx = np.arange(n_trial)
    split = np.where(idx % 2 == 0, "train", np.where(idx % 10 == 1, "val", "test"))
    act = s.activity.astype(np.int32 if s.kind == "spike_counts" else np.float32)
    return xr.Dataset(
        {
            "activity": (DIMS, act, {"kind": s.kind}),
            "true_latents": (("trial", "time", "latent"), s.latents),
            "true_rates": (DIMS, s.rates),
            "true_A": (("unit", "latent"), s.A),
            "true_B": (("latent", "unit"), s.B),
            "true_bias": (("unit",), s.bias),
        },
        coords={
            "trial": idx,
            "time": (np.arange(n_time) + 0.5) * s.bin_width,
            "unit": np.arange(n_unit),
            "split": ("trial", split),
            "condition": ("trial", np.asarray(s.condition).astype(str)),
            "area": ("unit", np.full(n_unit, "simulated")),
            "heldout": ("unit", np.zeros(n_unit, bool)),
            "latent_group": ("latent", np.asarray(s.latent_group)),
        },
        attrs={"kind": s.kind, "bin_width": s.bin_width, "source": f"simulate:{preset}"},
    )


def _run_seed(task: dict) -> list[dict]:
    """Fit and evaluate every method for one seed (in a worker process)."""
    import torch

    torch.set_num_threads(1)
    from disrnn.evaluation import evaluate
    from disrnn.fit import fit
    from disrnn.fit.config import POSTHOC_METHODS, FitConfig

    seed, root = task["seed"], Path(task["root"])
    ds = session_dataset(task["preset"], seed, **task.get("sim_overrides", {}))
    true_sizes = tuple(np.bincount(ds["latent_group"].values).tolist())
    sizes = tuple(task["groups"]) if task.get("groups") else true_sizes
    K = sum(sizes)
    rows = [_ceiling_row(ds, seed)]
    for method in task["methods"]:
        opts = {**task["options"], "groups": sizes}  # lrRNN: one group of the sum K
        if task.get("beta") is not None and method.startswith("DisRNN"):
            opts["beta"] = task["beta"]
        out = root / f"seed{seed}" / method
        init = None
        if method in POSTHOC_METHODS:
            init = root / f"seed{seed}" / "lrRNN"
            if not (init / "weights.pt").exists():
                base = FitConfig.from_options("lrRNN", {**task["options"], "rank": K})
                fit(ds, base, init, seed=seed, device="cpu", progress=False)
        cfg = FitConfig.from_options(method, opts)
        t0 = time.perf_counter()
        fit(ds, cfg, out, seed=seed, device="cpu", init_from=init, progress=False)
        seconds = time.perf_counter() - t0
        info = json.loads((out / "fit_info.json").read_text())
        if init is not None:  # a post-hoc fit costs its lrRNN too
            seconds += json.loads((init / "fit_info.json").read_text())["seconds"]
        ev = root / f"seed{seed}" / f"{method}.eval"
        evaluate(out, ds, ev, seed=0)
        m = json.loads((ev / "metrics.json").read_text())
        row = {"method": method, "seed": seed, "seconds": seconds, "epochs": info.get("epochs")}
        for key, _ in COLUMNS:
            if key != "seconds":
                row[key] = m.get(key)
        row["group_latent_r2_best_partition"] = m.get("group_latent_r2_best_partition")
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _oracle_connectivity_r(ds: xr.Dataset) -> tuple[float, float]:
    """(W r, mean W_g r) of an oracle that knows the true latents z and decoder A and fits
    only the encoder: B_ls, b_ls = least squares of z_t on tanh(x_{t-1}) over the training
    bins; r = Pearson r over the N x N entries of A B_ls (and of A_g B_ls,g per group)
    against the truth's A B (A_g B_g). How much of W the data identify at all."""
    train = np.asarray(ds["split"].values) == "train"
    x = ds["activity"].values[train].astype(float)
    h = np.tanh(x[:, :-1]).reshape(-1, x.shape[-1])  # (bin, unit)
    z = ds["true_latents"].values[train][:, 1:].reshape(-1, ds.sizes["latent"])
    coef, *_ = np.linalg.lstsq(np.c_[h, np.ones(len(h))], z, rcond=None)
    B_ls, A, B = coef[:-1].T, ds["true_A"].values, ds["true_B"].values
    labels = ds["latent_group"].values

    def r(a, b):
        return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])

    groups = [labels == g for g in np.unique(labels)]
    wg = [r(A[:, g] @ B[g], A[:, g] @ B_ls[g]) for g in groups]
    return r(A @ B, A @ B_ls), float(np.mean(wg))


def _ceiling_row(ds: xr.Dataset, seed: int) -> dict:
    """Group and component R^2 of the simulation's own encoder B tanh(x_{t-1}) on test
    bins; W r and W_g r of :func:`_oracle_connectivity_r`."""
    from disrnn.evaluation.alignment import align_groups

    test = np.asarray(ds["split"].values) == "test"
    x = ds["activity"].values[test].astype(float)
    mu = np.tanh(x[:, :-1]) @ ds["true_B"].values.T  # (trial, time - 1, latent)
    z = ds["true_latents"].values[test][:, 1:]
    labels = ds["latent_group"].values
    al = align_groups(mu.reshape(-1, mu.shape[-1]), labels, z.reshape(-1, z.shape[-1]), labels)
    return {
        "method": "ceiling",
        "seed": seed,
        "group_latent_r2": al.group_r2,
        "component_latent_r2": al.component_r2_mean,
        **dict(zip(("W_pearson", "Wsub_pearson"), _oracle_connectivity_r(ds), strict=True)),
    }


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"none": None, "true": True, "false": False}.get(text.lower(), text)


def _key_values(items: list[str], tuples: bool) -> dict:
    """['dt=0.03,0.1', 'restarts=3'] -> {'dt': (0.03, 0.1), 'restarts': 3}."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"expected KEY=VALUE, got {item!r}")
        if tuples and "," in value:
            out[key] = tuple(_number(v) for v in value.split(","))
        else:
            out[key] = _number(value)
    return out


def _describe(overrides: dict) -> str:
    return "".join(f", {k}={v}" for k, v in overrides.items())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--preset",
        default="paper-gaussian",
        help="simulator preset: paper-gaussian, paper-poisson, coupled-gaussian, ...",
    )
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (0..n-1)")
    p.add_argument(
        "--first-seed", type=int, default=0,
        help="first seed (seeds first..first+n-1): fresh sessions to check a choice on",
    )  # fmt: skip
    p.add_argument("--methods", default=",".join(METHOD_ORDER), help="comma-separated methods")
    p.add_argument("--epochs", type=int, default=None, help="override the default epochs")
    p.add_argument(
        "--groups",
        default=None,
        help="group sizes asked of the multi-group methods, e.g. 3,3 "
        "(default: the true sizes; coupled-gaussian has one true group of 6)",
    )
    p.add_argument("--beta", type=float, default=None, help="override beta (beta methods)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="FitConfig option for every method, e.g. --set restarts=1 --set pc_batch=512",
    )
    p.add_argument(
        "--sim-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="simulator PresetConfig override, e.g. --sim-override dt=0.03,0.1 (comma: a tuple)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="worker processes (one torch thread each)",
    )
    p.add_argument("--workdir", default=None, help="folder for fits (default: a temp folder)")
    p.add_argument("--out", default=None, help="also write the table (markdown) here")
    args = p.parse_args(argv)  # fmt: skip
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    options = {}
    if args.epochs is not None:
        options["epochs"] = args.epochs
    options.update(_key_values(args.set, tuples=False))
    sim_overrides = _key_values(args.sim_override, tuples=True)
    root = Path(args.workdir or tempfile.mkdtemp(prefix="disrnn-bench-"))
    t0 = time.perf_counter()
    tasks = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        tasks.append({"seed": seed, "preset": args.preset, "methods": methods,
                      "options": options, "root": str(root), "beta": args.beta,
                      "sim_overrides": sim_overrides,
                      "groups": [int(g) for g in args.groups.split(",")] if args.groups else None})  # fmt: skip
    rows: list[dict] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for result in pool.map(_run_seed, tasks):
            rows.extend(result)
    wall = time.perf_counter() - t0
    text = (
        f"preset {args.preset}{_describe(sim_overrides)}, options {options or 'default'}, seeds {args.first_seed}..{args.first_seed + args.seeds - 1}, {args.jobs} workers, "
        f"wall {wall:.0f} s\n\n" + markdown_table(rows, [*methods, "ceiling"], COLUMNS)
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
        Path(args.out).with_suffix(".json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
