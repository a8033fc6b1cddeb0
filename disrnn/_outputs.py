"""What an output path may replace: the one rule every writer checks before it starts.

An existing output path is replaced only when it holds a previous output of the same
kind, recognised by that kind's own marker (a fit folder by its ``config.json`` and
``weights.pt``, an evaluation folder by its ``metrics.json``, a binned dataset by its
``activity`` variable, ...); anything else is refused with a message naming it, unless
``force``. An output that is one of the writer's inputs, or a folder output that holds
one, is always refused: writing it would destroy what is being read. An empty folder
holds nothing to lose and is always accepted.

    check_output("results/x/fits/lrRNN/seed0", "fit", inputs=["x.nc"])

The workflow passes ``force=True``: its outputs are paths Snakemake owns (it removes
the files of a job it reruns, so a folder may be left without its marker).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["KINDS", "REPORT_GENERATOR", "check_output"]

#: the tag every HTML report carries (templates/base.html), which marks it as one
REPORT_GENERATOR = '<meta name="generator" content="disrnn">'


def _has_files(*names: str) -> Callable[[Path], bool]:
    def recognise(path: Path) -> bool:
        return all((path / name).is_file() for name in names)

    return recognise


def _hdf5_with(*members: str) -> Callable[[Path], bool]:
    def recognise(path: Path) -> bool:
        import h5py

        try:
            with h5py.File(path, "r") as f:
                return all(m in f for m in members)
        except (OSError, ValueError):  # not HDF5, unreadable
            return False

    return recognise


def _starts_with(marker: str, n_bytes: int = 4096) -> Callable[[Path], bool]:
    def recognise(path: Path) -> bool:
        try:
            with open(path, "rb") as f:
                return marker.encode() in f.read(n_bytes)
        except OSError:
            return False

    return recognise


def _sidecar(suffix: str) -> Callable[[Path], bool]:
    def recognise(path: Path) -> bool:
        return path.with_name(path.name + suffix).is_file()

    return recognise


@dataclasses.dataclass(frozen=True)
class OutputKind:
    """An output kind: its name in messages, folder or file, and its recogniser."""

    label: str
    folder: bool
    marker: str  # what recognises it, for the message
    recognise: Callable[[Path], bool]


KINDS = {
    "fit": OutputKind(
        "fit folder", True, "config.json and weights.pt", _has_files("config.json", "weights.pt")
    ),
    "evaluation": OutputKind("evaluation folder", True, "metrics.json", _has_files("metrics.json")),
    "selection": OutputKind(
        "selection folder", True, "selection.json", _has_files("selection.json")
    ),
    "dataset": OutputKind(
        "binned dataset", False, "an 'activity' variable", _hdf5_with("activity", "trial")
    ),
    "nwb": OutputKind(
        "simulated NWB session",
        False,
        "a ground_truth processing module",
        _hdf5_with("processing/ground_truth"),
    ),
    "report": OutputKind(
        "disrnn HTML report", False, REPORT_GENERATOR, _starts_with(REPORT_GENERATOR)
    ),
    "download": OutputKind(
        "DANDI download", False, "a .dandi.json sidecar", _sidecar(".dandi.json")
    ),
}


def _same_path(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return a.resolve() == b.resolve()


def _listing(folder: Path, limit: int = 5) -> str:
    names = sorted(p.name for p in folder.iterdir())
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_output(
    path: str | os.PathLike,
    kind: str,
    inputs: Iterable[str | os.PathLike | None] = (),
    force: bool = False,
) -> Path:
    """Check that writing ``path`` as a ``kind`` output destroys nothing; return it.

    Args:
        path: the output file or folder.
        kind: a key of :data:`KINDS` (``fit``, ``evaluation``, ``selection``,
            ``dataset``, ``nwb``, ``report``, ``download``).
        inputs: paths the writer reads (None entries and in-memory objects are skipped).
        force: replace an existing output that is not recognised as one of ``kind``.
    Returns:
        ``path`` as a Path.
    Raises:
        ValueError: ``path`` is one of ``inputs`` (or a folder output holding one), even
            with ``force``; an unknown ``kind``.
        FileExistsError: ``path`` exists and is not a previous ``kind`` output (nor an
            empty folder), without ``force``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}; valid: {', '.join(KINDS)}")
    spec, path = KINDS[kind], Path(path)
    for item in inputs:
        if not isinstance(item, str | os.PathLike):
            continue
        item = Path(item)
        same = _same_path(path, item)
        inside = spec.folder and path.is_dir() and item.resolve().is_relative_to(path.resolve())
        if same or inside:
            raise ValueError(
                f"the output {str(path)!r} {'is' if same else 'holds'} the input "
                f"{str(item)!r}; writing it would destroy the input; choose another output path"
            )
    if force or not (path.exists() or path.is_symlink()):
        return path
    if spec.folder and path.is_dir():
        if not any(path.iterdir()) or spec.recognise(path):
            return path
        what = f"a folder holding {_listing(path)}, without {spec.marker}"
    elif spec.folder:
        what = "a file, not a folder"
    elif path.is_dir():
        what = "a folder"
    elif spec.recognise(path):
        return path
    else:
        what = f"a file without {spec.marker}"
    raise FileExistsError(
        f"refusing to replace {str(path)!r}: it is {what}, not a previous {spec.label}; "
        "choose another output path, or pass --force (force=True) to replace it"
    )
