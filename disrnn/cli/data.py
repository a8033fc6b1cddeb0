"""The data subcommands: ``disrnn simulate``, ``disrnn fetch`` and ``disrnn bin``."""

from __future__ import annotations

from disrnn.cli._common import add_out, choices


# ---------------------------------------------------------------------------- simulate
def add_simulate(sub) -> None:
    p = sub.add_parser(
        "simulate",
        help="write a simulated NWB session with known ground truth",
        description="Simulate G independent latent systems driving a low-rank RNN and "
        "write the session (spikes or continuous activity, trials, truth) as NWB.",
    )
    p.add_argument(
        "--preset",
        required=True,
        choices=choices("disrnn.simulate", "PRESETS"),
        help="ground-truth system",
    )
    add_out(p, "output .nwb path")
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
def add_fetch(sub) -> None:
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
    add_out(p, "download folder; the asset path is kept below it")
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


def add_bin(sub) -> None:
    p = sub.add_parser(
        "bin",
        help="bin an NWB session into an xarray dataset (NetCDF)",
        description="Bin spikes (or a continuous TimeSeries) of one NWB session into a "
        "Dataset with dims (trial, time, unit). With no filter options every unit is kept "
        "and none is held out (the pipeline's config/config.yaml sets binning.min_rate and "
        "heldout.fraction; pass --min-rate and --heldout-fraction for the same dataset).",
    )
    p.add_argument("nwb", help="input .nwb file")
    add_out(p, "output .nc path")
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
    p.add_argument(
        "--behavior-lag",
        type=float,
        default=None,
        metavar="SECONDS",
        help="take each bin's behavior this much later than its spikes (default 0; NLB "
        "uses 0.1 for MC_Maze: motor cortex leads the hand)",
    )
    _add_bin_units(p)
    _add_bin_split(p)
    p.set_defaults(func=_run_bin)


def _add_bin_units(p) -> None:
    """``disrnn bin``'s unit filters, held-out units, history and rescaling."""
    from disrnn.data.bin_config import DUPLICATE_MODES, HELDOUT_MODES, RESCALE_MODES

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
        "--duplicates",
        choices=DUPLICATE_MODES,
        default=None,
        help="units that are one neuron recorded twice (same-bin counts far more correlated "
        "than one bin apart): drop = keep the one with more spikes; keep = keep both "
        f"(default {_bin_default('duplicates')})",
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
        "--test-trials",
        nargs="+",
        default=None,
        metavar="COLUMN VALUE",
        help="COLUMN VALUE [VALUE ...]: the trials whose trial column COLUMN holds one of "
        "the VALUEs are the test trials (e.g. 'split val': an NLB file's own validation "
        "trials); the others are split train/val in the ratio of --split's first two",
    )
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


def _test_trials(words: list[str] | None) -> tuple | None:
    """--test-trials COLUMN VALUE ... as BinConfig's (column, values); a COLUMN alone
    gives no values, which BinConfig refuses with its message."""
    return None if words is None else (words[0], tuple(words[1:]))


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
        "duplicates": args.duplicates,
        "behavior": tuple(args.behavior),
        "behavior_lag": args.behavior_lag,
        "heldout_fraction": args.heldout_fraction,
        "heldout": args.heldout,
        "pre_window": args.pre_window,
        "split": tuple(args.split) if args.split else None,
        "condition": args.condition,
        "stratify": args.stratify,
        "test_trials": _test_trials(args.test_trials),
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
