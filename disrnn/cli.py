"""The ``disrnn`` command line: one subcommand per pipeline step, argument parsing only.

Each subcommand converts its arguments into the package's config objects and calls one
public function; the Snakemake scripts and a notebook call the same functions.

    disrnn simulate --preset NAME --out SESSION.nwb [--seed S]
    disrnn fetch --dandiset ID --path ASSET [--version V] [--api-url URL] --out DIR
    disrnn bin SESSION.nwb --out DATASET.nc --bin-width SECONDS [...]
    disrnn fit DATASET.nc --method NAME --out FITDIR [...]
    disrnn evaluate FITDIR DATASET.nc --out EVALDIR
    disrnn reference DATASET.nc --out DIR [--method auto|smoothing|pca] [--components K]
    disrnn report ...
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

log = logging.getLogger("disrnn")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--groups takes comma-separated integer group sizes such as 3,3; got {text!r}"
        ) from None


def _add_out(p, help: str) -> None:  # noqa: A002 - argparse's own name
    """``--out`` and ``--force`` (one rule for every subcommand: disrnn._outputs)."""
    p.add_argument("--out", required=True, help=help)
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing --out that is not a previous output of this command "
        "(without it such a path is refused; an input is never replaced)",
    )


def _choices(module: str, name: str) -> list[str] | None:
    """Sorted keys of a registry, imported only when the parser is built."""
    import importlib

    try:
        return sorted(getattr(importlib.import_module(module), name))
    except (ImportError, AttributeError):  # a registry still being written: accept any value
        return None


# ---------------------------------------------------------------------------- simulate
def _add_simulate(sub) -> None:
    p = sub.add_parser(
        "simulate",
        help="write a simulated NWB session with known ground truth",
        description="Simulate G independent latent systems driving a low-rank RNN and "
        "write the session (spikes or continuous activity, trials, truth) as NWB.",
    )
    p.add_argument(
        "--preset",
        required=True,
        choices=_choices("disrnn.simulate", "PRESETS"),
        help="ground-truth system",
    )
    _add_out(p, "output .nwb path")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--n-trials", type=int, default=None, help="override the preset's trial count")
    p.add_argument("--n-units", type=int, default=None, help="override the preset's neuron count")
    p.add_argument(
        "--area-overlap",
        type=float,
        default=None,
        metavar="F",
        help="each latent group drives its own area of units, labelled in the electrodes "
        "table: 0 disjoint, F in (0, 1] the fraction of each area also read by the next group",
    )
    p.set_defaults(func=_run_simulate)


def _run_simulate(args) -> None:
    from disrnn._outputs import check_output
    from disrnn.simulate import simulate_nwb

    check_output(args.out, "nwb", force=args.force)
    pairs = (("n_trials", args.n_trials), ("n_units", args.n_units))
    pairs += (("area_overlap", args.area_overlap),)
    overrides = {k: v for k, v in pairs if v is not None}
    path = simulate_nwb(args.preset, args.out, seed=args.seed, **overrides)
    print(path)


# ------------------------------------------------------------------------------- fetch
def _add_fetch(sub) -> None:
    p = sub.add_parser(
        "fetch",
        help="download one NWB asset from a DANDI archive",
        description="Download one asset with the dandi client, verifying its digest. The API "
        "token, if needed, is read from the DANDI_API_KEY environment variable only.",
    )
    p.add_argument("--dandiset", required=True, help="dandiset identifier, e.g. 000207")
    p.add_argument(
        "--path", required=True, help="asset path inside the dandiset (a glob lists matches)"
    )
    p.add_argument(
        "--version",
        default=None,
        help="version: 'draft' or e.g. 0.220927.1850 (default: most recent published)",
    )
    p.add_argument(
        "--api-url",
        default=None,
        help="DANDI API URL (default: DANDI_API_URL or the public archive)",
    )
    _add_out(p, "download folder; the asset path is kept below it")
    p.set_defaults(func=_run_fetch)


def _run_fetch(args) -> None:
    from disrnn.data.dandi import fetch_asset

    path = fetch_asset(
        args.dandiset,
        args.path,
        args.out,
        version=args.version,
        api_url=args.api_url,
        force=args.force,
    )
    print(path)


# --------------------------------------------------------------------------------- bin
def _bin_default(name: str) -> str:
    """BinConfig's default of field ``name`` as help text (one place for the value)."""
    import dataclasses

    from disrnn.data.bin_config import BinConfig

    default = {f.name: f.default for f in dataclasses.fields(BinConfig)}[name]
    if default is None:
        return "none"
    if isinstance(default, tuple):
        return " ".join(f"{v:g}" for v in default)
    return f"{default:g}" if isinstance(default, float) else str(default)


def _add_bin(sub) -> None:
    p = sub.add_parser(
        "bin",
        help="bin an NWB session into an xarray dataset (NetCDF)",
        description="Bin spikes (or a continuous TimeSeries) of one NWB session into a "
        "Dataset with dims (trial, time, unit). With no filter options every unit is kept "
        "and none is held out (the pipeline's config/config.yaml sets binning.min_rate and "
        "heldout.fraction; pass --min-rate and --heldout-fraction for the same dataset).",
    )
    p.add_argument("nwb", help="input .nwb file")
    _add_out(p, "output .nc path")
    p.add_argument("--bin-width", type=float, required=True, help="bin width in seconds")
    p.add_argument(
        "--trials", default=None, help="'trials' or the name of an interval table in nwb.intervals"
    )
    p.add_argument(
        "--align", default=None, help="column of the trials table to align on (default start_time)"
    )
    p.add_argument(
        "--window",
        type=float,
        nargs=2,
        metavar=("START", "END"),
        default=None,
        help="window around the alignment in seconds, e.g. -0.5 1.5",
    )
    p.add_argument(
        "--window-length",
        type=float,
        default=None,
        help="without trials: cut the recording into consecutive windows of this length (s)",
    )
    p.add_argument(
        "--activity", default=None, help="bin this continuous TimeSeries instead of the Units table"
    )
    p.add_argument(
        "--behavior",
        nargs="*",
        default=[],
        metavar="NAME",
        help="TimeSeries names to bin as behavior",
    )
    _add_bin_units(p)
    _add_bin_split(p)
    p.set_defaults(func=_run_bin)


def _add_bin_units(p) -> None:
    """``disrnn bin``'s unit filters, held-out units, history and rescaling."""
    from disrnn.data.bin_config import HELDOUT_MODES, RESCALE_MODES

    p.add_argument(
        "--min-rate", type=float, default=None, help="drop units below this mean rate (Hz)"
    )
    p.add_argument(
        "--max-rate", type=float, default=None, help="drop units above this mean rate (Hz)"
    )
    p.add_argument(
        "--min-spikes", type=int, default=None, help="drop units with fewer spikes in the windows"
    )
    p.add_argument(
        "--heldout",
        choices=HELDOUT_MODES,
        default=None,
        help="held-out units: auto = the file's 'heldout' column when it marks a unit, "
        "else a seeded --heldout-fraction (with a warning); file = the column (error "
        f"without one); random = the seeded fraction (default {_bin_default('heldout')})",
    )
    p.add_argument(
        "--heldout-fraction",
        type=float,
        default=None,
        help="fraction of units held out for co-smoothing when they do not come from "
        f"the file's column (default {_bin_default('heldout_fraction')})",
    )
    p.add_argument(
        "--pre-window",
        type=float,
        default=None,
        metavar="SECONDS",
        help="history kept before each window (pre_activity), rounded down to whole "
        f"bins; 0 keeps none (default {_bin_default('pre_window')})",
    )
    p.add_argument(
        "--rescale",
        choices=("none", *RESCALE_MODES),
        default=None,
        help="unit-max: divide each unit's counts by its largest train-window count "
        f"(float32, coord 'scale') (default {_bin_default('rescale')})",
    )


def _add_bin_split(p) -> None:
    """``disrnn bin``'s trial split and condition options."""
    p.add_argument(
        "--split",
        type=float,
        nargs=3,
        metavar=("TRAIN", "VAL", "TEST"),
        default=None,
        help=f"trial split fractions (default {_bin_default('split')})",
    )
    p.add_argument(
        "--condition",
        default=None,
        metavar="COLUMN",
        help="trial column labelling the conditions (PSTHs, stratified splits, condition "
        "decoding): copied into the coord 'condition' (default: a column named condition)",
    )
    p.add_argument("--stratify", default=None, help="condition column to stratify the split by")
    p.add_argument(
        "--allow-overlap",
        action="store_true",
        default=None,
        help="accept trial windows that overlap across train/val/test (their spikes are "
        "counted in both trials); without it such overlaps are refused, others warn",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help=f"seed of the split and held-out draw (default {_bin_default('seed')})",
    )


def _run_bin(args) -> None:
    import dataclasses

    from disrnn._outputs import check_output
    from disrnn.data.binning import BinConfig, bin_session
    from disrnn.data.io import DIMS, save_dataset

    check_output(args.out, "dataset", inputs=[args.nwb], force=args.force)
    options = {
        "bin_width": args.bin_width,
        "trials": args.trials,
        "align": args.align,
        "window": tuple(args.window) if args.window else None,
        "window_length": args.window_length,
        "activity": args.activity,
        "min_rate": args.min_rate,
        "max_rate": args.max_rate,
        "min_spikes": args.min_spikes,
        "behavior": tuple(args.behavior),
        "heldout_fraction": args.heldout_fraction,
        "heldout": args.heldout,
        "pre_window": args.pre_window,
        "split": tuple(args.split) if args.split else None,
        "condition": args.condition,
        "stratify": args.stratify,
        "seed": args.seed,
        "allow_overlap": args.allow_overlap,
    }
    config = BinConfig(**{k: v for k, v in options.items() if v is not None})
    if args.rescale is not None:
        config = dataclasses.replace(
            config, rescale=None if args.rescale == "none" else args.rescale
        )
    ds = bin_session(args.nwb, config)
    save_dataset(ds, args.out)
    sizes = ", ".join(f"{d}={n}" for d, n in ds.sizes.items() if d in DIMS)
    print(f"{args.out}: {sizes}")


# --------------------------------------------------------------------------------- fit
def _fit_options():
    """(FitConfig field, argparse keywords) of ``disrnn fit``'s model options; defaults
    and choices come from :mod:`disrnn.fit.config` (never typed here)."""
    from disrnn.fit import config as fc

    def default(name):
        return f"default {getattr(fc.FitConfig, name)}"

    return (
        ("groups", {"type": _int_list, "help": "latent group sizes, e.g. 3,3 (sum = rank "
                    "K; a one-group method fits one group of the sum; default: the method's)"}),
        ("beta", {"type": float, "help": "partial-correlation weight (default: by data kind, "
                  f"{fc.DEFAULT_BETA})"}),
        ("alpha", {"type": float, "help": "block-diagonal penalty weight (bdRNN; default: the method's)"}),
        ("likelihood", {"choices": fc.LIKELIHOODS, "help": "observation model (auto: poisson "
                        f"for spike counts, gaussian for continuous; {default('likelihood')})"}),
        ("link", {"choices": fc.LINKS, "help": f"Poisson link ({default('link')})"}),
        ("history", {"type": int, "help": f"history length L in bins ({default('history')})"}),
        ("kernel", {"choices": fc.KERNELS, "help": f"history kernel for L > 1 ({default('kernel')})"}),
        ("sigma", {"choices": fc.SIGMAS, "help": f"encoder sd: rule of thumb or learned ({default('sigma')})"}),
        ("hidden", {"type": int, "help": f"hidden units of MLP encoder/decoder ({default('hidden')})"}),
        ("epochs", {"type": int, "help": f"maximum passes over the training bins (default: about "
                    f"{fc.TARGET_STEPS} optimizer steps)"}),
        ("batch_size", {"type": int, "help": f"bins per mini-batch ({default('batch_size')})"}),
        ("lr", {"type": float, "help": f"AdamW learning rate ({default('lr')})"}),
        ("weight_decay", {"type": float, "help": f"AdamW weight decay ({default('weight_decay')})"}),
        ("schedule", {"choices": fc.SCHEDULES, "help": f"learning-rate schedule ({default('schedule')})"}),
        ("warmup", {"type": float, "help": f"fraction of epochs over which beta and alpha ramp up ({default('warmup')})"}),
        ("patience", {"type": int, "help": "early-stopping patience in epochs (default: max(10, epochs // 5))"}),
        ("checkpoint_every", {"type": int, "help": f"epochs between checkpoints ({default('checkpoint_every')})"}),
        ("init", {"choices": fc.INITS, "help": f"initialisation (default: {fc.DEFAULT_PC_INIT} "
                  "for methods with a PC penalty, else random)"}),
        ("restarts", {"type": int, "help": "initialisations fitted, the lowest validation "
                      f"objective kept ({default('restarts')})"}),
        ("pc_batch", {"type": int, "help": "bins of the separate batch PC is estimated on "
                      "(default: the likelihood batch)"}),
        ("finetune_lr_scale", {"type": float, "help": "factor on lr after the rotation init "
                               "(default: by data kind, spike counts 0.1)"}),
    )  # fmt: skip


def _add_fit(sub) -> None:
    from disrnn.fit.config import METHODS

    p = sub.add_parser(
        "fit",
        help="fit one method (DisRNN or a baseline) to a binned dataset",
        description="Fit on the 'train' trials with early stopping on 'val'. The fit folder "
        "holds config.json, weights.pt, losses.csv and a checkpoint a killed run resumes from.",
    )
    p.add_argument("dataset", help="binned dataset (.nc) from `disrnn bin`")
    p.add_argument("--method", required=True, choices=list(METHODS), help="model or baseline")
    _add_out(p, "fit folder")
    for name, kwargs in _fit_options():
        p.add_argument("--" + name.replace("_", "-"), dest=name, default=None, **kwargs)
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="torch device")
    p.add_argument(
        "--init-from", default=None, help="lrRNN fit folder that post-hoc methods transform"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_run_fit)


def fit_config(args: argparse.Namespace):
    """The FitConfig of parsed ``disrnn fit`` arguments (:meth:`FitConfig.from_options`)."""
    from disrnn.fit.config import FitConfig

    options = {name: getattr(args, name) for name, _ in _fit_options()}
    return FitConfig.from_options(args.method, options)


def _run_fit(args) -> None:
    from disrnn.fit import fit

    out = fit(
        args.dataset,
        fit_config(args),
        args.out,
        seed=args.seed,
        device=args.device,
        init_from=args.init_from,
        progress=not args.no_progress,
        force=args.force,
    )
    print(out)


# ---------------------------------------------------------------------------- evaluate
def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a fit on the test trials",
        description="Write EVALDIR/metrics.json (test-split metrics) and EVALDIR/latents.nc "
        "(latents of every trial with its split).",
    )
    p.add_argument("fit", help="fit folder from `disrnn fit`")
    p.add_argument("dataset", help="the dataset the fit was trained on (.nc)")
    _add_out(p, "evaluation folder")
    p.add_argument("--seed", type=int, default=0, help="seed of Monte Carlo estimates and rollouts")
    p.add_argument(
        "--allow-other-dataset",
        action="store_true",
        help="evaluate on a dataset other than the fit's (refused by default: the metrics "
        "would not be the fit's)",
    )
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args) -> None:
    from disrnn.evaluation import evaluate

    out = evaluate(
        args.fit,
        args.dataset,
        args.out,
        seed=args.seed,
        allow_other_dataset=args.allow_other_dataset,
        force=args.force,
    )
    print(out)


# --------------------------------------------------------------------------- reference
def _add_reference(sub) -> None:
    from disrnn.evaluation.run_reference import REFERENCE_METHODS

    p = sub.add_parser(
        "reference",
        help="score a community reference (smoothing or PCA) on the test trials",
        description="Write DIR/metrics.json with the evaluation's keys for the reference: "
        "NLB's smoothed-spikes co-smoothing baseline (spike counts with held-out units) or "
        "K principal components as latents (otherwise).",
    )
    p.add_argument("dataset", help="binned dataset (.nc) from `disrnn bin`")
    _add_out(p, "reference folder")
    p.add_argument(
        "--method",
        choices=("auto", *REFERENCE_METHODS),
        default="auto",
        help="auto (default): smoothing for spike counts with held-out units, else pca",
    )
    p.add_argument(
        "--components", type=int, default=None, metavar="K", help="PCA latents (needed by pca)"
    )
    p.add_argument(
        "--condition",
        default=None,
        metavar="COLUMN",
        help="trial coord of the conditions (PSTHs, decoding; default: condition)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the folds and classifiers")
    p.set_defaults(func=_run_reference)


def _run_reference(args) -> None:
    from disrnn.evaluation import run_reference

    out = run_reference(
        args.dataset,
        args.out,
        method=args.method,
        n_components=args.components,
        seed=args.seed,
        condition=args.condition,
        force=args.force,
    )
    print(out)


# ------------------------------------------------------------------------------ report
def _add_report(sub) -> None:
    p = sub.add_parser("report", help="render HTML reports from evaluated fits")
    rsub = p.add_subparsers(dest="report_kind", required=True)
    s = rsub.add_parser("session", help="one session's report")
    s.add_argument("--dataset", required=True, help="the session's dataset (.nc)")
    s.add_argument("--evals", nargs="+", required=True, help="evaluation folders of this session")
    s.add_argument("--session", required=True, help="session id shown in the report")
    _add_out(s, "output .html")
    s.set_defaults(func=_run_report_session)
    m = rsub.add_parser("summary", help="the summary over sessions")
    m.add_argument("--evals", nargs="+", required=True, help="evaluation folders of all sessions")
    _add_out(m, "output index.html")
    m.set_defaults(func=_run_report_summary)


def _run_report_session(args) -> None:
    from disrnn._outputs import check_output
    from disrnn.report import render_session_report

    check_output(args.out, "report", inputs=[args.dataset, *args.evals], force=args.force)
    print(render_session_report(args.session, args.dataset, args.evals, args.out))


def _run_report_summary(args) -> None:
    from disrnn._outputs import check_output
    from disrnn.report import render_summary_report

    check_output(args.out, "report", inputs=args.evals, force=args.force)
    print(render_summary_report(args.evals, args.out))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disrnn",
        description="Disentangled low-rank RNNs for neural population recordings.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _add_simulate,
        _add_fetch,
        _add_bin,
        _add_fit,
        _add_evaluate,
        _add_reference,
        _add_report,
    ):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``disrnn`` command; returns the exit status.

    User errors (bad values, missing files) print one line ``disrnn: error: ...`` and
    exit with status 2; the traceback is shown with ``--verbose``.
    """
    from disrnn.logs import log_to_console, redact

    parser = build_parser()
    args = parser.parse_args(argv)
    log_to_console(logging.DEBUG if args.verbose else logging.INFO)
    try:
        args.func(args)
    except (ValueError, TypeError, FileNotFoundError, PermissionError, KeyError, OSError) as err:
        if args.verbose:
            raise
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(redact(f"disrnn {args.command}: error: {msg}"), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
