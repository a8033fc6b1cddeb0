"""The ``disrnn`` command line: one subcommand per pipeline step, argument parsing only.

Each subcommand converts its arguments into the package's config objects and calls one
public function; the Snakemake scripts and a notebook call the same functions.

    disrnn simulate --preset NAME --out SESSION.nwb [--seed S]
    disrnn fetch --dandiset ID --path ASSET [--version V] [--api-url URL] --out DIR
    disrnn bin SESSION.nwb --out DATASET.nc --bin-width SECONDS [...]
    disrnn fit DATASET.nc --method NAME --out FITDIR [...]
    disrnn select DATASET.nc --out DIR [--ranks 2,4,6] [--partitions 3,3 4,2] [--seeds N]
    disrnn evaluate FITDIR DATASET.nc --out EVALDIR
    disrnn reference DATASET.nc --out DIR [--method auto|smoothing|pca] [--components K] [--history L]
    disrnn report ...

The parsers live by stage: ``data.py`` (simulate, fetch, bin), ``fit.py`` (fit and
:func:`fit_config`), ``select.py`` (select), ``results.py`` (evaluate, reference, report); ``_common.py`` holds
what they share. ``python -m disrnn`` runs the same :func:`main`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from disrnn.cli.data import add_bin, add_fetch, add_simulate
from disrnn.cli.fit import add_fit, fit_config
from disrnn.cli.results import add_evaluate, add_reference, add_report
from disrnn.cli.select import add_select

__all__ = ["build_parser", "fit_config", "main"]

log = logging.getLogger("disrnn")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disrnn",
        description="Disentangled low-rank RNNs for neural population recordings.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        add_simulate,
        add_fetch,
        add_bin,
        add_fit,
        add_select,
        add_evaluate,
        add_reference,
        add_report,
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
