"""Real recordings: every method x seeds against the community's references.

    python benchmarks/real.py                                # both shared sessions, spikes
    python benchmarks/real.py --sessions alm --methods DisRNN,lrRNN --seeds 3
    python benchmarks/real.py --continuous --sessions alm    # 50 ms, unit-max rescaled
    python benchmarks/real.py --sessions alm-small --methods DisRNN --beta 2 --fit epochs=300
    python benchmarks/real.py --sessions alm --methods lrRNN,DisRNN --seeds 1 --bin-width 0.005

Sessions (``../shared/data/``, see its README): ``alm`` (DANDI 000006, mouse ALM, trials
aligned on ``start_time``, 0..6 s), ``alm-small`` (the same file cut to the shape of a
small NLB session: a seeded 100 trials, 3.8..4.5 s, re-split 60/20/20), ``alm-late``
(the shape of the paper's M1 recording for ``--continuous``: a seeded 168 trials, the
late delay 5.3..6.0 s) and ``mtl`` (DANDI 000207, human MTL, ``recognition_table``
aligned on ``fixcross_time``, -0.5..1.5 s). Binning: 20 ms bins (``--bin-width``: others,
e.g. NLB's 5 ms; ``--continuous``: 50 ms with counts divided by each unit's train maximum, fitted with
the Gaussian likelihood, the paper's M1 preprocessing), a seeded 25 % of units held out,
trials split 60/20/20 (seed 0), ``disrnn bin``'s default history bins before each window.

Spikes: per method and seed, ``disrnn.fit`` with the package defaults (history, kernel,
sigma_q of spike counts) and ``disrnn.evaluate`` on the test trials (lrRNN+ICA and LINT
reuse their lrRNN's smoothing posterior, as the workflow does); one row
``smoothing`` (NLB's smoothing baseline, kernel and alpha chosen by CV on the training
trials, scored on the same bins as the fits) and one ``smoothing (causal)``: the same
with a kernel on earlier bins only, the like-for-like reference of the fits' causal
co-bps (their one-step prediction sees only the past). Columns (mean +- sd over seeds):
co-bps, held-out-unit test log-likelihood per bin (nats), PSTH R^2 of the held-out units
(condition = the trial column ``type`` / ``old_new``, NLB's definition; of the one-step
rates and of the smoothing posterior's), PC between the DisRNN partition's groups (a
one-group fit's latents cut at the same sizes; the fit's own posterior,
``Fit.posterior_scale``; Monte Carlo of the evaluation), fit seconds (one torch thread).

Continuous: condition decoding accuracy from the latents (logistic regression, train+val
-> test trials, all bins of a trial concatenated; and the mean of per-bin accuracies),
behavior-free; one row ``pca`` with K components of the held-in units.

This is a benchmark, not a test: it asserts nothing. Every number is seeded.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SESSIONS = {
    "alm": {
        "file": "000006_sub-anm372904_ses-20170619.nwb",
        "bin": {"trials": "trials", "align": "start_time", "window": (0.0, 6.0)},
        "condition": "type",
    },
    # ALM cut to the shape of a small NLB session (MC_Maze_Small: 100 trials, a 0.7 s
    # window): a seeded 100 of the 254 trials, 3.8-4.5 s after trial start (around the
    # pole's approach), re-split 60/20/20
    "alm-small": {
        "file": "000006_sub-anm372904_ses-20170619.nwb",
        "bin": {"trials": "trials", "align": "start_time", "window": (3.8, 4.5)},
        "condition": "type",
        "n_trials": 100,
    },
    # ALM cut to the shape of the paper's M1 recording (168 trials x 14 bins of 50 ms):
    # a seeded 168 trials, the late delay 5.3-6.0 s after trial start, where the lick side
    # is decodable; for --continuous
    "alm-late": {
        "file": "000006_sub-anm372904_ses-20170619.nwb",
        "bin": {"trials": "trials", "align": "start_time", "window": (5.3, 6.0)},
        "condition": "type",
        "n_trials": 168,
    },
    "mtl": {
        "file": "sub-4_ses-4_ecephys+image.nwb",
        # 4 pairs of these windows overlap (up to 0.77 s), 2 across splits: as measured
        "bin": {
            "trials": "recognition_table",
            "align": "fixcross_time",
            "window": (-0.5, 1.5),
            "allow_overlap": True,
        },
        "condition": "old_new",
    },
}
from tables import markdown_table  # noqa: E402 (benchmarks/tables.py, beside this script)

from disrnn.fit.config import METHODS  # noqa: E402 (the registry: no torch)

METHOD_ORDER = list(METHODS)
CAUSAL_ROW = "smoothing (causal)"  # the causal smoothing: the reference of the causal co-bps
SPIKE_COLUMNS = [
    ("co_bps", "co-bps"),
    ("co_bps_smoothed", "co-bps (smoothing posterior)"),
    ("test_ll_heldout_per_bin_neuron", "held-out LL"),
    ("co_psth_r2", "PSTH R2"),
    ("co_psth_r2_smoothed", "PSTH R2 (smoothing posterior)"),
    ("pc_partition", "PC"),
    ("seconds", "fit s"),
]
CONT_COLUMNS = [
    ("condition_accuracy", "cond acc"),
    ("condition_accuracy_time_mean", "cond acc/bin"),
    ("condition_chance", "chance"),
    ("recon_r2", "recon R2"),
    ("test_ll_per_bin_neuron", "test LL"),
    ("seconds", "fit s"),
]


def parse_options(pairs: list[str]) -> dict:
    """["KEY=VALUE", ...] -> {KEY: VALUE}, each value a Python literal where it parses."""
    out = {}
    for kv in pairs:
        key, _, value = kv.partition("=")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def bin_dataset(name: str, continuous: bool, out: Path, width: float | None = None) -> Path:
    """Bin one shared session (see the module docstring) to ``out``; returns the path.
    width: the bin width in seconds (None: 20 ms, 50 ms when ``continuous``)."""
    from disrnn.data.binning import BinConfig, bin_session
    from disrnn.data.io import save_dataset

    spec = SESSIONS[name]
    path = DATA / spec["file"]
    if not path.exists():
        raise SystemExit(f"{path} not found: the real sessions live in ../shared/data/")
    cfg = BinConfig(
        bin_width=width or (0.05 if continuous else 0.02),
        heldout_fraction=0.25,
        heldout="random",
        split=(0.6, 0.2, 0.2),
        seed=0,
        rescale="unit-max" if continuous else None,
        **spec["bin"],
    )
    ds = bin_session(path, cfg)
    if "n_trials" in spec:
        from disrnn.data.splits import split_trials

        rng = np.random.default_rng(0)
        keep = np.sort(rng.choice(ds.sizes["trial"], spec["n_trials"], replace=False))
        ds = ds.isel(trial=keep)
        ds = ds.assign_coords(split=("trial", split_trials(keep.size, cfg.split, rng)))
    if spec["condition"] in ds.coords:
        ds = ds.assign_coords(condition=("trial", ds[spec["condition"]].values.astype(str)))
    save_dataset(ds, out)
    return out


def _pc_at_partition(fit, ds, sizes, seed=0) -> float | None:
    """PC of the test latents between contiguous groups of ``sizes`` (evaluation's MC)."""
    from disrnn.evaluation.pc import aggregated_posterior_pc
    from disrnn.fit.tensors import valid_bins

    if sum(sizes) != fit.module.rank or len(sizes) < 2:
        return None
    test = np.asarray(ds["split"].values).astype(str) == "test"
    dt = ds.isel(trial=np.flatnonzero(test))
    mu = fit.latents(dt).transpose("trial", "time", "latent").values
    mu = mu[valid_bins(dt, fit.history)]
    groups = np.repeat(np.arange(len(sizes)), sizes)
    return float(aggregated_posterior_pc(mu, fit.posterior_scale, groups, seed=seed))


def _fit_eval(task: dict) -> dict:
    """Fit and evaluate one method with one seed (in a worker process)."""
    import torch

    torch.set_num_threads(1)
    from disrnn.evaluation import evaluate
    from disrnn.fit import fit, load_fit
    from disrnn.fit.config import POSTHOC_METHODS, FitConfig

    ds_path, root, method, seed = (
        Path(task["dataset"]),
        Path(task["root"]),
        task["method"],
        task["seed"],
    )
    opts = {"groups": tuple(task["groups"]), **task["options"]}
    out = root / f"seed{seed}" / method
    init = None
    if method in POSTHOC_METHODS:
        init = root / f"seed{seed}" / "lrRNN"
        if not (init / "weights.pt").exists():
            base = FitConfig.from_options("lrRNN", opts)
            fit(ds_path, base, init, seed=seed, device="cpu", progress=False)
    t0 = time.perf_counter()
    fit(ds_path, FitConfig.from_options(method, opts), out, seed=seed, device="cpu",
        init_from=init, progress=False)  # fmt: skip
    seconds = time.perf_counter() - t0
    if init is not None:  # a post-hoc fit costs its lrRNN too
        seconds += json.loads((init / "fit_info.json").read_text())["seconds"]
    ev = root / f"seed{seed}" / f"{method}.eval"
    # a post-hoc method's posterior is its lrRNN's (same W and bias): reuse its metrics
    share = root / f"seed{seed}" / "lrRNN.eval"
    share = share if init is not None and (share / "metrics.json").exists() else None
    evaluate(out, ds_path, ev, seed=0, posterior_from=share)
    m = json.loads((ev / "metrics.json").read_text())
    row = {"method": method, "seed": seed, "seconds": seconds, **m}
    f = load_fit(out)
    import xarray as xr

    ds = xr.load_dataset(ds_path)
    if task["continuous"]:
        from disrnn.evaluation.decoding import condition_decoding

        if "condition" in ds.coords:
            lat = f.latents(ds)
            row.update(condition_decoding(lat, ds["condition"].values, ds["split"].values))
    else:
        row["pc_partition"] = _pc_at_partition(f, ds, task["groups"])
    print(json.dumps({k: row.get(k) for k in ("method", "seed", *task["keys"])}), flush=True)
    return row


def reference_rows(ds_path: Path, continuous: bool, K: int, history: int) -> list[dict]:
    """The smoothing (spikes: NLB's, then its causal twin of past bins only, as the row
    ``smoothing (causal)``) or PCA (continuous) reference on the same dataset."""
    import xarray as xr

    t0 = time.perf_counter()
    if continuous:
        from disrnn.evaluation.pca import pca_reference

        res = pca_reference(ds_path, K, seed=0, condition="condition", history=history)
        method = "pca"
    else:
        from disrnn.evaluation.references import smoothing_reference

        ds = xr.load_dataset(ds_path)
        cond = "condition" if "condition" in ds.coords else None
        res = smoothing_reference(ds_path, seed=0, condition=cond, history=history)
        method = "smoothing"
    row = {"method": method, "seed": 0, **res.metrics, "seconds": time.perf_counter() - t0}
    if continuous or row.get("co_bps_causal") is None:
        return [row]
    causal = {k: row[f"{k}_causal"] for k in ("co_bps", "test_ll_heldout_per_bin_neuron",
                                              "co_psth_r2")}  # fmt: skip
    return [row, {**row, **causal, "method": CAUSAL_ROW, "seconds": None}]


def run_session(name: str, args, work: Path) -> str:
    from disrnn.fit.config import FitConfig
    from disrnn.fit.tensors import bin_width

    columns = CONT_COLUMNS if args.continuous else SPIKE_COLUMNS
    tag = "" if args.bin_width is None else f"-{args.bin_width * 1e3:g}ms"
    ds_path = bin_dataset(name, args.continuous, work / f"{name}{tag}.nc", args.bin_width)
    import xarray as xr

    ds = xr.load_dataset(ds_path)
    kind = "continuous" if args.continuous else "spike_counts"
    L = FitConfig.create("DisRNN").resolve(kind, bin_width(ds)).history
    methods = [m for m in args.methods.split(",") if m]
    tasks = [
        {"dataset": str(ds_path), "root": str(work / f"{name}{tag}"), "method": m, "seed": s,
         "groups": args.groups, "continuous": args.continuous,
         "options": {**args.fit, **({} if args.beta is None or not m.startswith("DisRNN")
                                     else {"beta": args.beta})},
         "keys": [k for k, _ in columns]}
        for s in range(args.seeds) for m in methods
    ]  # fmt: skip
    t0 = time.perf_counter()
    rows = reference_rows(ds_path, args.continuous, sum(args.groups), L)
    for row in rows:
        print(json.dumps({k: row.get(k) for k in ("method", *[c for c, _ in columns])}), flush=True)
    from disrnn.fit.config import POSTHOC_METHODS

    # trained methods first: a post-hoc method transforms the lrRNN of its seed, which must
    # be written before it (two workers fitting one folder are refused by its lock)
    first = [t for t in tasks if t["method"] not in POSTHOC_METHODS]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        rows += list(pool.map(_fit_eval, first))
        rows += list(pool.map(_fit_eval, [t for t in tasks if t not in first]))
    wall = time.perf_counter() - t0
    sizes = ds.sizes
    title = (
        f"### {name}: {sizes['trial']} trials x {sizes['time']} bins x {sizes['unit']} units "
        f"({int(ds['heldout'].sum())} held out), {ds.attrs['bin_width']} s bins, "
        f"groups {tuple(args.groups)}, L = {L}; wall {wall:.0f} s"
    )
    shift = rows[0].get("co_bps_null_shift")
    if shift is not None:  # the same on every row: the data's, on the same scored bins
        title += (
            f"\n\nWith NLB's null every co-bps here is {shift:.4f} lower (`co_bps_null_shift`)."
        )
    if args.out:
        Path(args.out).with_suffix(f".{name}.json").write_text(json.dumps(rows, default=str))
    return (
        title + "\n\n" + markdown_table(rows, ["smoothing", CAUSAL_ROW, "pca", *methods], columns)
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--sessions", default="alm,mtl", help="comma-separated: alm, alm-small, alm-late, mtl"
    )
    p.add_argument("--methods", default=",".join(METHOD_ORDER), help="comma-separated methods")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (0..n-1)")
    p.add_argument("--groups", default="4,4", help="group sizes of multi-group methods")
    p.add_argument("--continuous", action="store_true", help="50 ms, unit-max, Gaussian")
    p.add_argument(
        "--bin-width", type=float, default=None, help="seconds (default 0.02; 0.05 continuous)"
    )
    p.add_argument("--beta", type=float, default=None, help="beta of the PC methods")
    p.add_argument(
        "--fit",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="FitConfig options of every method, e.g. epochs=300 patience=50",
    )
    p.add_argument("--jobs", type=int, default=2, help="worker processes (one thread each)")
    p.add_argument("--workdir", default=None, help="keep datasets and fits here")
    p.add_argument("--out", default=None, help="also write the tables to this .md file")
    args = p.parse_args(argv)
    args.groups = [int(g) for g in args.groups.split(",")]
    args.fit = parse_options(args.fit)
    if args.bin_width is not None and not args.bin_width > 0:
        p.error(f"--bin-width must be a positive number of seconds, got {args.bin_width}")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="disrnn-real-"))
    work.mkdir(parents=True, exist_ok=True)
    out = [run_session(name, args, work) for name in args.sessions.split(",")]
    text = "\n\n".join(out)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
