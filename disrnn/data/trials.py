"""Which trials are binned and on which bins: the alignment, the window, the bin edges.

:func:`trial_windows` reads the alignment from an interval table (``BinConfig.trials``,
``align``) or cuts the recording into windows of ``window_length`` seconds, derives the
bin edges of the window and drops the trials whose alignment is NaN or whose window
leaves the recording (the dataset attrs ``dropped_trials`` record both).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from disrnn.data.bin_config import BinConfig
from disrnn.data.bins import _TOL
from disrnn.data.session import Session

log = logging.getLogger(__name__)


def trial_windows(session: Session, config: BinConfig, extent):
    """The kept trials: (ids, alignment times, trial columns, bin edges, alignment label,
    table rows, the dropped trials by reason)."""
    ids, align, columns, window, label, n_rows = _alignment(session, config, extent)
    duration = extent[1] - extent[0]
    if window[1] - window[0] > duration + _TOL:
        raise ValueError(
            f"window {window} ({window[1] - window[0]:g} s) is longer than the data "
            f"({duration:.6g} s, from {extent[0]:.6g} to {extent[1]:.6g} s)"
        )
    edges = _edges(window, config.bin_width)
    nan = ~np.isfinite(align)
    with np.errstate(invalid="ignore"):
        outside = ~nan & (
            (align + edges[0] < extent[0] - _TOL) | (align + edges[-1] > extent[1] + _TOL)
        )
    dropped = {
        "nan_alignment": {"count": int(nan.sum()), "ids": ids[nan].tolist()},
        "outside_recording": {"count": int(outside.sum()), "ids": ids[outside].tolist()},
    }
    keep_t = ~(nan | outside)
    if not keep_t.any():
        raise ValueError(
            f"no trial is left: {int(nan.sum())} have a NaN alignment and "
            f"{int(outside.sum())} windows leave the recording ({extent[0]:.6g}-"
            f"{extent[1]:.6g} s); check align and window{_relative_hint(align, label, extent)}"
        )
    columns = {k: v[keep_t] for k, v in columns.items()}
    return ids[keep_t], align[keep_t], columns, edges, label, n_rows, dropped


def _relative_hint(align: np.ndarray, label: str, extent) -> str:
    """A clause for the error above when every alignment time lies before the recording
    starts: a task column may hold times within each trial (seconds after its start),
    not session times."""
    t = align[np.isfinite(align)]
    if not t.size or t.max() >= extent[0]:
        return ""
    return (
        f". The alignment times ({label}) span {t.min():.6g}-{t.max():.6g} s, all before "
        "the recording starts: they may be times within each trial, not session times; "
        "then align on start_time and move the window by them"
    )


def _alignment(session: Session, config: BinConfig, extent: tuple[float, float]):
    """-> (ids, align times, columns, window, alignment label, table rows before drops)."""
    if config.window_length is not None:
        length = config.window_length
        duration = extent[1] - extent[0]
        if length > duration + _TOL:
            raise ValueError(
                f"window_length {length} s is longer than the data ({duration:.6g} s, from "
                f"{extent[0]:.6g} to {extent[1]:.6g} s); choose at most {duration:.6g} s"
            )
        n = int(math.floor(duration / length + 1e-9))
        starts = extent[0] + np.arange(n) * length
        columns = {"start_time": starts, "stop_time": starts + length}
        return np.arange(n), starts, columns, (0.0, length), "windows", n
    name = config.trials
    if name is None:
        if "trials" not in session.tables:
            avail = ", ".join(sorted(session.tables)) or "none"
            raise ValueError(
                f"{session.path.name} has no nwb.trials table; name an interval table with "
                f"trials (available: {avail}) and a window, or give window_length to cut "
                "the recording into windows"
            )
        name = "trials"
    table = session.table(name)
    column = config.align or "start_time"
    if column not in table.columns:
        avail = ", ".join(table.columns) or "none"
        raise ValueError(
            f"table {name!r} has no column {column!r} to align on; available columns: {avail}"
        )
    align = table.columns[column]
    if align.dtype.kind not in "iuf":
        raise ValueError(f"alignment column {name}.{column} is not numeric ({align.dtype})")
    window = config.window
    if window is None:
        dur = table.columns["stop_time"] - table.columns["start_time"]
        dur = dur[np.isfinite(dur)]
        if dur.size == 0 or np.ptp(dur) > 1e-6 or dur[0] <= 0:
            raise ValueError(
                f"trials of {name!r} differ in duration (or have none); give a window "
                "(start, end) in seconds around the alignment, e.g. --window -0.5 1.5"
            )
        window = (0.0, float(np.median(dur)))
        if window[1] < config.bin_width * (1 - 1e-9):
            raise ValueError(
                f"bin_width {config.bin_width} s is longer than the trials ({window[1]:g} s)"
            )
    return (
        table.ids,
        align.astype(np.float64),
        table.columns,
        window,
        f"{name}/{column}",
        len(align),
    )


def _edges(window: tuple[float, float], bin_width: float) -> np.ndarray:
    n = int(math.floor((window[1] - window[0]) / bin_width + 1e-9))
    if abs(n * bin_width - (window[1] - window[0])) > 1e-9 * max(1.0, abs(window[1])):
        log.warning(
            "window %s is not a whole number of %g s bins; using %d bins up to %g s",
            window,
            bin_width,
            n,
            window[0] + n * bin_width,
        )
    return window[0] + np.arange(n + 1) * bin_width
