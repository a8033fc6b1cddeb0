"""Bin one NWB session into the project's dataset (dims ``trial, time, unit``).

The dataset contract is in ``docs/design.md`` ("The dataset"). Bins are half-open
``[start, end)``: for a trial aligned at time ``a`` the bin edges, relative to ``a``, are
``window_start + k * bin_width`` (k = 0..n_bins), and the counts of a unit equal
``np.histogram(spike_times - a, edges)`` except that a spike exactly on the last edge
belongs to the next window (np.histogram closes its last bin). Spike times are used as
stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from disrnn.data import splits
from disrnn.data.io import clean_attrs
from disrnn.data.nwb import Series, Session, read_session

log = logging.getLogger(__name__)

_TOL = 1e-7  # seconds: slack when comparing a window with the recording's extent


@dataclass(frozen=True)
class BinConfig:
    """How to turn one NWB session into a dataset.

    Attributes:
        bin_width: seconds, > 0.
        trials: ``"trials"`` (nwb.trials) or the name of a table in ``nwb.intervals``;
            None: ``nwb.trials`` when the file has it, unless ``window_length`` is given.
        align: column of the trials table to align on (None -> ``"start_time"``).
        window: (start, end) seconds around the alignment, start < end; None -> (0, the
            trials' common duration), an error when trial durations differ.
        window_length: without trials: consecutive windows of this many seconds.
        activity: bin this continuous TimeSeries (float32) instead of the Units table.
        min_rate, max_rate: drop units whose mean rate over the binned windows (Hz) is
            below / above; min_spikes: drop units with fewer spikes in the windows.
        behavior: TimeSeries names averaged onto the bins.
        heldout_fraction: in [0, 1); fraction of units held out when the file has no
            ``heldout`` unit column.
        split: (train, val, test) fractions over trials, non-negative, summing to 1.
        stratify: trial column whose values are split in proportion each.
        seed: seed of the split and the held-out draw.

    Raises:
        ValueError: any value outside the ranges above (the message names it).
    """

    bin_width: float
    trials: str | None = None
    align: str | None = None
    window: tuple[float, float] | None = None
    window_length: float | None = None
    activity: str | None = None
    min_rate: float | None = None
    max_rate: float | None = None
    min_spikes: int | None = None
    behavior: tuple[str, ...] = ()
    heldout_fraction: float = 0.0
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)
    stratify: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        def setf(name, value):
            object.__setattr__(self, name, value)

        bw = _number("bin_width", self.bin_width)
        if not bw > 0:
            raise ValueError(f"bin_width must be a positive number of seconds, got {bw}")
        setf("bin_width", bw)
        if self.window is not None:
            if len(self.window) != 2:
                raise ValueError(f"window must be (start, end) in seconds, got {self.window!r}")
            start, end = (_number("window start", v) for v in self.window)
            if not start < end:
                raise ValueError(
                    f"window start must be before its end, got ({start}, {end}); e.g. "
                    "(-0.5, 1.5) for 0.5 s before to 1.5 s after the alignment"
                )
            if end - start < bw * (1 - 1e-9):
                raise ValueError(
                    f"bin_width {bw} s is longer than the window ({start}, {end}) of "
                    f"{end - start:g} s; choose a bin width at most the window length"
                )
            setf("window", (start, end))
        if self.window_length is not None:
            length = _number("window_length", self.window_length)
            if not length > 0:
                raise ValueError(f"window_length must be positive seconds, got {length}")
            if length < bw * (1 - 1e-9):
                raise ValueError(
                    f"bin_width {bw} s is longer than window_length {length} s; choose a "
                    "bin width at most the window length"
                )
            if self.trials is not None or self.align is not None or self.window is not None:
                raise ValueError(
                    "window_length cuts the recording into windows without trials; do not "
                    "combine it with trials, align or window"
                )
            setf("window_length", length)
        for name in ("min_rate", "max_rate", "min_spikes"):
            value = getattr(self, name)
            if value is not None and not _number(name, value) >= 0:
                raise ValueError(f"{name} must be non-negative, got {value}")
        if self.min_rate is not None and self.max_rate is not None:
            if self.min_rate > self.max_rate:
                raise ValueError(
                    f"min_rate {self.min_rate} Hz is above max_rate {self.max_rate} Hz"
                )
        if isinstance(self.behavior, str):
            setf("behavior", (self.behavior,))
        setf("behavior", tuple(self.behavior))
        if len(set(self.behavior)) != len(self.behavior):
            raise ValueError(f"behavior names repeat: {self.behavior}")
        hf = _number("heldout_fraction", self.heldout_fraction)
        if not 0.0 <= hf < 1.0:
            raise ValueError(f"heldout_fraction must be in [0, 1), got {hf}")
        setf("heldout_fraction", hf)
        fractions = tuple(_number("split fraction", v) for v in self.split)
        if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
            raise ValueError(
                "split must be three non-negative fractions (train, val, test) summing to "
                f"1, got {tuple(self.split)}"
            )
        setf("split", fractions)
        if not isinstance(self.seed, int | np.integer) or isinstance(self.seed, bool):
            raise TypeError(f"seed must be an integer, got {self.seed!r}")


def _number(name: str, value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


# ------------------------------------------------------------------------------ numerics
def _gather(starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of every ``range(starts[i], stops[i])`` concatenated, and their ``i``."""
    lens = np.maximum(stops - starts, 0)
    owner = np.repeat(np.arange(len(starts)), lens)
    offsets = np.cumsum(lens) - lens
    idx = np.arange(lens.sum()) - np.repeat(offsets, lens) + np.repeat(starts, lens)
    return idx, owner


def count_spikes(spike_times: list[np.ndarray], align: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Spike counts in half-open bins around each alignment time.

    Args:
        spike_times: one sorted (spike,) float64 array of times in s per unit.
        align: (trial,) float64 alignment times in s.
        edges: (bin + 1,) float64 bin edges relative to the alignment, increasing.

    Returns:
        (trial, time, unit) int32 counts; count[t, k, u] = #{s : edges[k] <= s - align[t]
        < edges[k + 1]}.
    """
    n_trials, n_bins, n_units = len(align), len(edges) - 1, len(spike_times)
    counts = np.zeros((n_units, n_trials * n_bins), dtype=np.int64)
    margin = 1e-6 + 1e-9 * np.abs(align).max(initial=0.0)
    for u, times in enumerate(spike_times):
        if times.size == 0:
            continue
        lo = np.searchsorted(times, align + edges[0] - margin, side="left")
        hi = np.searchsorted(times, align + edges[-1] + margin, side="right")
        idx, trial = _gather(lo, hi)
        rel = times[idx] - align[trial]
        k = np.searchsorted(edges, rel, side="right") - 1
        keep = (k >= 0) & (k < n_bins)
        counts[u] = np.bincount(trial[keep] * n_bins + k[keep], minlength=n_trials * n_bins)
    return counts.T.reshape(n_trials, n_bins, n_units).astype(np.int32)


def observed_bins(intervals: list[np.ndarray], align: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(trial, time, unit) bool: the whole bin lies inside one of the unit's intervals."""
    start = align[:, None] + edges[None, :-1]  # (trial, time)
    stop = align[:, None] + edges[None, 1:]
    out = np.zeros((len(align), len(edges) - 1, len(intervals)), dtype=bool)
    for u, ivals in enumerate(intervals):
        for lo, hi in ivals:
            out[:, :, u] |= (start >= lo - _TOL) & (stop <= hi + _TOL)
    return out


def bin_series(series: Series, align: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """A TimeSeries on the bins: (trial, time, channel) float64.

    Samples whose timestamp falls in a bin are averaged; when the series is sampled more
    coarsely than the bins (median interval > bin width), or a bin holds no sample, the
    value is linearly interpolated at the bin centre. Bins outside the sampled span are NaN.
    """
    t, data = series.timestamps, series.data
    n_trials, n_bins = len(align), len(edges) - 1
    width = float(np.min(np.diff(edges)))
    centres = align[:, None] + (edges[:-1] + edges[1:])[None, :] / 2  # (trial, time)
    out = np.full((n_trials * n_bins, data.shape[1]), np.nan)
    if len(t) == 0:
        return out.reshape(n_trials, n_bins, -1)
    coarse = series.dt > width * (1 + 1e-9)
    if not coarse:
        lo = np.searchsorted(t, align + edges[0] - width, side="left")
        hi = np.searchsorted(t, align + edges[-1] + width, side="right")
        idx, trial = _gather(lo, hi)
        k = np.searchsorted(edges, t[idx] - align[trial], side="right") - 1
        keep = (k >= 0) & (k < n_bins)
        flat = trial[keep] * n_bins + k[keep]
        n = np.bincount(flat, minlength=n_trials * n_bins)
        has = n > 0
        for c in range(data.shape[1]):
            sums = np.bincount(flat, weights=data[idx[keep], c], minlength=n_trials * n_bins)
            out[has, c] = sums[has] / n[has]
    missing = np.isnan(out).any(axis=1)
    if missing.any() and len(t) > 1:
        x = centres.ravel()[missing]
        inside = (x >= t[0]) & (x <= t[-1])
        for c in range(data.shape[1]):
            vals = np.interp(x, t, data[:, c])
            vals[~inside] = np.nan
            column = out[:, c]
            column[missing] = np.where(np.isnan(column[missing]), vals, column[missing])
    return out.reshape(n_trials, n_bins, -1)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- the steps
def _provenance(path: Path) -> dict:
    sha = file_sha256(path)
    attrs = {
        "source": "local",
        "dandiset": "",
        "dandiset_version": "",
        "asset_path": "",
        "api_url": "",
        "nwb_path": str(path.resolve()),
        "sha256": sha,
    }
    sidecar = path.with_name(path.name + ".dandi.json")
    if sidecar.exists():
        try:
            meta = json.loads(sidecar.read_text())
        except (OSError, ValueError) as err:
            log.warning("ignoring unreadable DANDI sidecar %s: %s", sidecar, err)
            return attrs
        attrs.update(
            source="dandi",
            dandiset=str(meta.get("dandiset") or ""),
            dandiset_version=str(meta.get("version") or ""),
            asset_path=str(meta.get("asset_path") or ""),
            api_url=str(meta.get("api_url") or ""),
        )
        if meta.get("sha256") and meta["sha256"] != sha:
            log.warning("%s: sha256 differs from the DANDI sidecar's; the file changed", path)
    return attrs


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


def _apply_filters(
    config: BinConfig, counts: np.ndarray, observed: np.ndarray | None, unit_ids: np.ndarray
) -> tuple[np.ndarray, dict]:
    """-> (kept unit mask, filters attr). Each filter acts on the units the earlier kept."""
    total = counts.sum(axis=(0, 1))
    n_obs = (
        observed.sum(axis=(0, 1))
        if observed is not None
        else np.full(counts.shape[2], counts.shape[0] * counts.shape[1])
    )
    rate = np.where(n_obs > 0, total / np.maximum(n_obs, 1) / config.bin_width, 0.0)
    keep = np.ones(len(unit_ids), dtype=bool)
    report = {}
    tests = [
        ("min_spikes", config.min_spikes, lambda v: total >= v),
        ("min_rate", config.min_rate, lambda v: rate >= v),
        ("max_rate", config.max_rate, lambda v: rate <= v),
    ]
    for name, value, passes in tests:
        if value is None:
            continue
        removed = keep & ~passes(value)
        keep &= ~removed
        report[name] = {
            "value": value,
            "removed": int(removed.sum()),
            "removed_units": unit_ids[removed].tolist(),
        }
    if not keep.any():
        what = "; ".join(f"{k} {v['value']} removed {v['removed']}" for k, v in report.items())
        raise ValueError(
            f"the unit filters removed every one of the {len(unit_ids)} units ({what}); "
            f"mean rates range {rate.min():.3g}-{rate.max():.3g} Hz and spike counts "
            f"{total.min()}-{total.max()} in the binned windows; relax the filters"
        )
    return keep, report


def _coord_name(name: str, taken: set[str], prefix: str) -> str:
    return name if name not in taken else f"{prefix}_{name}"


# ------------------------------------------------------------------------------- public
def bin_session(nwb_path: str | os.PathLike, config: BinConfig) -> xr.Dataset:
    """Bin one NWB session into a dataset per the contract in ``docs/design.md``.

    Args:
        nwb_path: the ``.nwb`` file (a ``<file>.dandi.json`` sidecar beside it adds the
            DANDI provenance).
        config: what to bin and how (:class:`BinConfig`).

    Returns:
        ``xr.Dataset`` with ``activity`` (trial, time, unit): int32 spike counts per bin
        (``kind="spike_counts"``) or float32 bin means of a continuous TimeSeries
        (``kind="continuous"``); ``mask`` (trial, time) bool when the units have
        ``obs_intervals`` (a bin is observed when it lies wholly inside an interval of
        every kept unit; a unit's counts in bins outside its own intervals are 0 and
        its mean rate for the filters is taken over its observed bins); behavior
        variables (trial, time, <name>_dim) float64; ground truth of simulated files
        (``true_latents``, ``true_rates`` as expected counts per bin for spikes,
        ``true_A``, ``true_B``, ``true_bias``, coord ``latent_group``); coords ``trial`` (+ table columns, ``split``), ``time`` (bin
        centres, s), ``unit`` (+ ``area``, ``heldout``, other unit columns).

    Raises:
        FileNotFoundError: no file at ``nwb_path``.
        ValueError: unreadable or non-NWB file, no Units table (and no ``activity``),
            bad spike times, unknown table/column/TimeSeries (the message lists what
            exists), a window longer than the data, every trial dropped, every unit
            filtered out.
    """
    path = Path(nwb_path)
    want = tuple(config.behavior) + ((config.activity,) if config.activity else ())
    session = read_session(path, series=want)
    bw = config.bin_width

    if config.activity is not None:
        source = session.series[config.activity]
        if any(v is not None for v in (config.min_rate, config.max_rate, config.min_spikes)):
            raise ValueError(
                "min_rate, max_rate and min_spikes filter spiking units; they do not apply "
                f"to the continuous TimeSeries {config.activity!r}"
            )
        extent = source.extent
        kind = "continuous"
    else:
        if not session.has_units:
            avail = ", ".join(sorted(session.series_paths)) or "none"
            raise ValueError(
                f"{path.name} has no Units table with spike times; to bin a continuous "
                f"TimeSeries give activity=NAME (--activity NAME); TimeSeries in the file: "
                f"{avail}"
            )
        extent = session.extent
        kind = "spike_counts"
    if not all(np.isfinite(extent)) or extent[1] <= extent[0]:
        raise ValueError(f"{path.name} holds no spikes or samples to bin (extent {extent})")

    ids, align, columns, window, label, n_rows = _alignment(session, config, extent)
    duration = extent[1] - extent[0]
    if window[1] - window[0] > duration + _TOL:
        raise ValueError(
            f"window {window} ({window[1] - window[0]:g} s) is longer than the data "
            f"({duration:.6g} s, from {extent[0]:.6g} to {extent[1]:.6g} s)"
        )
    edges = _edges(window, bw)
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
            f"{extent[1]:.6g} s); check align and window"
        )
    ids, align = ids[keep_t], align[keep_t]
    columns = {k: v[keep_t] for k, v in columns.items()}
    n_trials, n_bins = len(ids), len(edges) - 1

    observed = None
    if kind == "spike_counts":
        unit_ids = session.unit_ids
        if len(unit_ids) == 0:
            raise ValueError(f"{path.name}: the Units table has no units; nothing to bin")
        counts = count_spikes(session.spike_times, align, edges)
        if session.obs_intervals is not None:
            observed = observed_bins(session.obs_intervals, align, edges)
            counts[~observed] = 0
        keep_u, filters = _apply_filters(config, counts, observed, unit_ids)
        activity = counts[:, :, keep_u]
        area = session.area[keep_u]
        unit_columns = {k: v[keep_u] for k, v in session.unit_columns.items()}
    else:
        activity = bin_series(source, align, edges).astype(np.float32)
        unit_ids = np.arange(activity.shape[2])
        keep_u = np.ones(len(unit_ids), dtype=bool)
        filters = {}
        area = np.full(len(unit_ids), "unknown")
        unit_columns = {}
    unit_ids = unit_ids[keep_u]

    split_rng, heldout_rng = splits.generators(int(config.seed))
    strata = None
    if config.stratify is not None:
        if config.stratify not in columns:
            avail = ", ".join(columns) or "none"
            raise ValueError(
                f"cannot stratify by {config.stratify!r}: not a trial column; available: {avail}"
            )
        strata = columns[config.stratify]
    split = splits.split_trials(n_trials, config.split, split_rng, strata)
    heldout = splits.heldout_units(
        len(unit_ids), config.heldout_fraction, heldout_rng, unit_columns.pop("heldout", None)
    )

    centres = (edges[:-1] + edges[1:]) / 2
    data_vars = {
        "activity": (("trial", "time", "unit"), activity, {"kind": kind}),
    }
    if observed is not None:
        data_vars["mask"] = (("trial", "time"), observed[:, :, keep_u].all(axis=2))
    for name in config.behavior:
        var = name.rsplit("/", 1)[-1]
        if var in data_vars or var in ("trial", "time", "unit", "split", "area", "heldout"):
            raise ValueError(f"behavior name {var!r} collides with a dataset variable")
        values = bin_series(session.series[name], align, edges)
        data_vars[var] = (
            ("trial", "time", f"{var}_dim"),
            values,
            {
                "kind": "behavior",
                "nwb_path": session.series[name].path,
                "units": session.series[name].unit,
            },
        )
    truth = session.ground_truth
    coords_extra = {}
    if truth is not None:
        pos = np.flatnonzero(keep_u)
        scale = bw if kind == "spike_counts" else 1.0
        rates = bin_series(truth.rates, align, edges)[:, :, pos] * scale
        data_vars["true_latents"] = (
            ("trial", "time", "latent"),
            bin_series(truth.latents, align, edges),
        )
        data_vars["true_rates"] = (("trial", "time", "unit"), rates)
        data_vars["true_A"] = (("unit", "latent"), truth.A[pos])
        data_vars["true_B"] = (("latent", "unit"), truth.B[:, pos])
        data_vars["true_bias"] = (("unit",), truth.bias[pos])
        coords_extra = {
            "latent": np.arange(len(truth.latent_group)),
            "latent_group": ("latent", truth.latent_group),
            "latent_system": ("latent", truth.latent_system),
        }

    taken = set(data_vars) | {
        "trial",
        "time",
        "unit",
        "split",
        "area",
        "heldout",
        "latent",
        "latent_group",
        "latent_system",
    }
    coords = {
        "trial": ids.astype(np.int64),
        "time": centres,
        "unit": unit_ids.astype(np.int64),
        "split": ("trial", split),
        "area": ("unit", np.asarray(area, dtype=str)),
        "heldout": ("unit", heldout),
        **coords_extra,
    }
    for name, values in columns.items():
        coords[_coord_name(name, taken, "trial")] = ("trial", values)
    for name, values in unit_columns.items():
        key = _coord_name(name, taken | set(coords), "unit")
        coords[key] = ("unit", values)

    attrs = {
        **_provenance(path),
        "nwb_identifier": session.identifier,
        "kind": kind,
        "bin_width": bw,
        "alignment": label,
        "window_start": float(edges[0]),
        "window_end": float(edges[-1]),
        "filters": filters,
        "dropped_trials": dropped,
        "n_table_rows": n_rows,
        "split_fractions": list(config.split),
        "stratify": config.stratify,
        "heldout_source": "nwb column" if "heldout" in session.unit_columns else "random",
        "seed": int(config.seed),
    }
    if config.activity is not None:
        attrs["activity_series"] = source.path
    ds = xr.Dataset(data_vars, coords=coords, attrs=clean_attrs(attrs))
    log.info(
        "binned %s: %d trials x %d bins x %d units (%s, %s)",
        path.name,
        n_trials,
        n_bins,
        len(unit_ids),
        kind,
        label,
    )
    return ds
