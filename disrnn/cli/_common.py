"""What every subcommand's parser shares: ``--out``/``--force`` and registry choices."""

from __future__ import annotations


def add_out(p, help: str) -> None:  # noqa: A002 - argparse's own name
    """``--out`` and ``--force`` (one rule for every subcommand: disrnn._outputs)."""
    p.add_argument("--out", required=True, help=help)
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing --out that is not a previous output of this command "
        "(without it such a path is refused; an input is never replaced)",
    )


def choices(module: str, name: str) -> list[str] | None:
    """Sorted keys of a registry, imported only when the parser is built."""
    import importlib

    try:
        return sorted(getattr(importlib.import_module(module), name))
    except (ImportError, AttributeError):  # a registry still being written: accept any value
        return None
