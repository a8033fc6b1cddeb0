"""``disrnn select``: the grid options come from :mod:`disrnn.selection.config`."""

from __future__ import annotations

import argparse

from disrnn.cli._common import add_out


def _ints(text: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        out = ()
    if not out:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 3,3; got {text!r}"
        )
    return out


def add_select(sub) -> None:
    from disrnn.selection.config import ENUMERATE_UP_TO, PARTITIONS_AT, SelectConfig

    d = SelectConfig()
    p = sub.add_parser(
        "select",
        help="how many modules: fit lrRNN ranks and DisRNN partitions, decide on 'val'",
        description="Fit an lrRNN per rank and seed and a DisRNN per partition (started "
        "from the lrRNN of its rank) and seed, score them on the 'val' trials and decide K, "
        "the partition and the verdict by the rule in disrnn.selection.rule. Writes "
        "candidates.csv, selection.json and the candidates' fit folders.",
    )
    p.add_argument("dataset", help="binned dataset (.nc) from `disrnn bin`")
    add_out(p, "selection folder")
    p.add_argument(
        "--ranks",
        type=_ints,
        default=None,
        help=f"ranks K tried, e.g. 2,4,6 (default {','.join(map(str, d.ranks))})",
    )
    p.add_argument(
        "--partitions",
        type=_ints,
        nargs="+",
        default=None,
        metavar="SIZES",
        help="DisRNN partitions tried, e.g. 3,3 4,2 (default: every partition "
        f"into 2..--max-groups groups, ranks up to {ENUMERATE_UP_TO})",
    )
    p.add_argument(
        "--max-groups",
        type=int,
        default=None,
        help=f"most groups of an enumerated partition (default {d.max_groups})",
    )
    p.add_argument(
        "--seeds", type=int, default=None, help=f"seeds per candidate, 0..N-1 (default {d.seeds})"
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="maximum epochs of every DisRNN candidate (default: the fit's default; the "
        "lrRNNs always take the fit's epochs)",
    )
    p.add_argument(
        "--partitions-at",
        choices=PARTITIONS_AT,
        default=None,
        help=f"ranks with DisRNN partitions (default {d.partitions_at})",
    )
    p.add_argument(
        "--beta",
        type=float,
        default=None,
        help="DisRNN's partial-correlation weight (default: by data kind)",
    )
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="torch device")
    p.set_defaults(func=_run_select)  # fmt: skip


def select_config(args: argparse.Namespace):
    """The SelectConfig of parsed ``disrnn select`` arguments."""
    from disrnn.selection.config import SelectConfig

    names = ("ranks", "partitions", "max_groups", "seeds", "epochs", "partitions_at")
    return SelectConfig.from_options({n: getattr(args, n) for n in names})


def _run_select(args) -> None:
    from disrnn.selection import read_selection, select

    out = select(
        args.dataset,
        args.out,
        select_config(args),
        method_options={"DisRNN": {"beta": args.beta}},
        device=args.device,
        force=args.force,
    )
    print(read_selection(out)[0]["sentence"])
    print(out)
