"""Bin one NWB session into the project's dataset (dims ``trial, time, unit``).

The dataset contract is in ``docs/design.md`` ("The dataset"). Bins are half-open
``[start, end)``: for a trial aligned at time ``a`` the bin edges, relative to ``a``, are
``window_start + k * bin_width`` (k = 0..n_bins), and the counts of a unit equal
``np.histogram(spike_times - a, edges)`` except that a spike exactly on the last edge
belongs to the next window (np.histogram closes its last bin). Spike times are used as
stored.

This module is the step (NWB session + BinConfig -> dataset), cut along its parts:
``_activity_source`` (what is binned), ``trials.trial_windows`` (which trials, which
bins; ``trials.py``), ``_bin_units`` (counts or means of the kept units),
``_split_and_heldout`` (trial splits, held-out units), ``_data_vars`` / ``_coords`` (the
dataset). What to bin is :class:`BinConfig` (``bin_config.py``); the counting and
averaging onto bins is ``bins.py`` (numpy only, no NWB).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import xarray as xr

from disrnn.data import splits
from disrnn.data.bin_config import BinConfig
from disrnn.data.bins import bin_series, count_spikes, observed_bins
from disrnn.data.duplicates import drop_twins
from disrnn.data.io import BEHAVIOR_KIND, DIMS, clean_attrs, file_sha256
from disrnn.data.nwb import read_session
from disrnn.data.pre_window import pre_window_vars
from disrnn.data.rescale import rescale_unit_max
from disrnn.data.session import Session
from disrnn.data.trials import trial_windows

__all__ = [
    "BinConfig",
    "bin_series",
    "bin_session",
    "count_spikes",
    "file_sha256",
    "observed_bins",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- the steps
def _provenance(path: Path, simulated: bool) -> dict:
    """Where the file came from: ``source`` "dandi" (a ``.dandi.json`` sidecar beside it),
    "simulated" (written by :mod:`disrnn.simulate`: it holds the ground truth) or "local"."""
    sha = file_sha256(path)
    attrs = {
        "source": "simulated" if simulated else "local",
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


def _with_condition(columns: dict, condition: str | None, path: Path) -> dict:
    """Trial columns with ``condition`` = the chosen column (a new dict; None: unchanged).

    Raises:
        ValueError: ``condition`` is not a trial column (the message lists them).
    """
    if condition is None:
        return columns
    if condition not in columns:
        avail = ", ".join(columns) or "none"
        raise ValueError(
            f"condition={condition!r} is not a trial column of {path.name}; trial columns: {avail}"
        )
    if condition == "condition":
        return columns
    out = {k: v for k, v in columns.items() if k != "condition"}
    if "condition" in columns:
        out["trial_condition"] = columns["condition"]
    out["condition"] = columns[condition]
    return out


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
        centres, s), ``unit`` (+ ``area``, ``heldout``, other unit columns); with
        ``config.n_pre_bins`` P > 0 the history before each window, ``pre_activity``
        (trial, pre_time, unit) and ``pre_mask`` (trial, pre_time) bool
        (:mod:`disrnn.data.pre_window`); with ``config.rescale`` the counts divided per
        unit (:mod:`disrnn.data.rescale`).

    Raises:
        FileNotFoundError: no file at ``nwb_path``.
        ValueError: unreadable or non-NWB file, no Units table (and no ``activity``),
            bad spike times, unknown table/column/TimeSeries (the message lists what
            exists), a window longer than the data, every trial dropped, every unit
            filtered out or held out, a split left without trials, trial windows that
            overlap across splits (unless ``config.allow_overlap``; overlaps warn).
    """
    path = Path(nwb_path)
    want = tuple(config.behavior) + ((config.activity,) if config.activity else ())
    session = read_session(path, series=want)
    source, extent, kind = _activity_source(session, config, path)
    ids, align, columns, edges, label, n_rows, dropped = trial_windows(session, config, extent)
    n_trials, n_bins = len(ids), len(edges) - 1
    units = _bin_units(session, config, source, kind, align, edges, path)
    columns = _with_condition(columns, config.condition, path)
    split, heldout, heldout_source = _split_and_heldout(config, columns, n_trials, units, path)
    length = float(edges[-1] - edges[0])
    splits.check_overlaps(ids, align + edges[0], length, split, config.allow_overlap, path.name)
    data_vars, coords_extra, pre_covered = _data_vars(
        session, config, kind, source, units, align, edges
    )
    coords = _coords(ids, edges, units, split, heldout, coords_extra, columns, data_vars)
    attrs = {
        **_provenance(path, simulated=session.ground_truth is not None),
        "nwb_identifier": session.identifier,
        **_bin_attrs(config, kind, label, edges, units, dropped, n_rows, heldout_source),
        "pre_window": pre_covered,
        "seed": int(config.seed),
    }
    if config.activity is not None:
        attrs["activity_series"] = source.path
    ds = xr.Dataset(data_vars, coords=coords, attrs=clean_attrs(attrs))
    if config.rescale == "unit-max":
        ds = rescale_unit_max(ds)
    log.info(
        "binned %s: %d trials x %d bins x %d units (%s, %s)",
        path.name,
        n_trials,
        n_bins,
        len(units["ids"]),
        kind,
        label,
    )
    return ds


def _bin_attrs(config: BinConfig, kind, label, edges, units, dropped, n_rows, heldout_source):
    """The dataset attrs that say how it was binned, filtered, dropped and split."""
    return {
        "kind": kind,
        "bin_width": config.bin_width,
        "alignment": label,
        "window_start": float(edges[0]),
        "window_end": float(edges[-1]),
        "filters": units["filters"],
        "dropped_trials": dropped,
        "n_table_rows": n_rows,
        "split_fractions": list(config.split),
        "stratify": config.stratify,
        "test_trials": _test_trials_attr(config.test_trials),
        "condition_column": config.condition,
        "heldout_mode": config.heldout,
        "heldout_source": heldout_source,
    }


def _test_trials_attr(test_trials) -> str:
    """``"column: value, ..."`` of the trials chosen as test trials; "" for a seeded split."""
    return "" if test_trials is None else f"{test_trials[0]}: {', '.join(test_trials[1])}"


def _split_and_heldout(config: BinConfig, columns: dict, n_trials: int, units: dict, path: Path):
    """(split (trial,) str, heldout (unit,) bool, what decided the held-out units).

    Takes the file's ``heldout`` column out of ``units["columns"]`` (it becomes the
    ``heldout`` coord, not a unit column).

    Raises:
        ValueError: ``config.stratify`` or the column of ``config.test_trials`` is not a
            trial column (the message lists them); ``config.test_trials`` marks no trial
            or every trial.
    """
    split_rng, heldout_rng = splits.generators(int(config.seed))
    strata = None
    if config.stratify is not None:
        strata = splits.trial_column(columns, config.stratify, "stratify", path.name)
    if config.test_trials is None:
        split = splits.split_trials(n_trials, config.split, split_rng, strata)
    else:
        marked = splits.marked_trials(columns, *config.test_trials, source=path.name)
        split = splits.split_around_test(marked, config.split, split_rng, strata)
    heldout, heldout_source = splits.choose_heldout(
        len(units["ids"]),
        config.heldout_fraction,
        heldout_rng,
        units["columns"].pop("heldout", None),
        mode=config.heldout,
        source=path.name,
    )
    return split, heldout, heldout_source


def _activity_source(session: Session, config: BinConfig, path: Path):
    """(continuous TimeSeries or None, (start, end) extent in s, kind) of what is binned."""
    source = None
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
    return source, extent, kind


def _bin_units(session: Session, config: BinConfig, source, kind, align, edges, path) -> dict:
    """The activity of the kept units: dict of ``activity`` (trial, time, unit),
    ``observed`` (trial, time, all units) bool or None, ``keep`` (all units,) bool,
    ``filters``, ``area``, ``columns`` (unit columns of the kept units), ``ids``."""
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
        if config.duplicates == "drop":
            filters["duplicates"] = drop_twins(counts, keep_u, unit_ids, path.name)
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
    return {
        "activity": activity,
        "observed": observed,
        "keep": keep_u,
        "filters": filters,
        "area": area,
        "columns": unit_columns,
        "ids": unit_ids[keep_u],
    }


def _data_vars(session: Session, config: BinConfig, kind, source, units: dict, align, edges):
    """(data variables, extra coords, seconds of history covered): activity, mask, behavior,
    the ground truth and the history before each window (:func:`pre_window_vars`)."""
    data_vars = {
        "activity": (DIMS, units["activity"], {"kind": kind}),
    }
    keep_u, observed = units["keep"], units["observed"]
    if observed is not None:
        data_vars["mask"] = (("trial", "time"), observed[:, :, keep_u].all(axis=2))
    for name in config.behavior:
        var = name.rsplit("/", 1)[-1]
        if var in data_vars or var in (*DIMS, "split", "area", "heldout"):
            raise ValueError(f"behavior name {var!r} collides with a dataset variable")
        values = bin_series(session.series[name], align + config.behavior_lag, edges)
        data_vars[var] = (
            ("trial", "time", f"{var}_dim"),
            values,
            {
                "kind": BEHAVIOR_KIND,
                "nwb_path": session.series[name].path,
                "units": session.series[name].unit,
                "lag": config.behavior_lag,
            },
        )
    truth = session.ground_truth
    coords_extra = {}
    if truth is not None:
        pos = np.flatnonzero(keep_u)
        scale = config.bin_width if kind == "spike_counts" else 1.0
        rates = bin_series(truth.rates, align, edges)[:, :, pos] * scale
        data_vars["true_latents"] = (
            ("trial", "time", "latent"),
            bin_series(truth.latents, align, edges),
        )
        data_vars["true_rates"] = (DIMS, rates)
        data_vars["true_A"] = (("unit", "latent"), truth.A[pos])
        data_vars["true_B"] = (("latent", "unit"), truth.B[:, pos])
        data_vars["true_bias"] = (("unit",), truth.bias[pos])
        coords_extra = {
            "latent": np.arange(len(truth.latent_group)),
            "latent_group": ("latent", truth.latent_group),
            "latent_system": ("latent", truth.latent_system),
        }
    pre_vars, pre_coords, pre_covered = pre_window_vars(
        session,
        kind,
        keep_u,
        align,
        float(edges[0]),
        config.bin_width,
        config.n_pre_bins,
        series=source if kind == "continuous" else None,
    )
    data_vars.update(pre_vars)
    coords_extra.update(pre_coords)
    return data_vars, coords_extra, pre_covered


def _coords(ids, edges, units: dict, split, heldout, coords_extra, columns, data_vars) -> dict:
    """The dataset's coords: trial, time (bin centres), unit and their metadata."""
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
        "pre_time",
        "scale",
    }
    coords = {
        "trial": ids.astype(np.int64),
        "time": (edges[:-1] + edges[1:]) / 2,
        "unit": units["ids"].astype(np.int64),
        "split": ("trial", split),
        "area": ("unit", np.asarray(units["area"], dtype=str)),
        "heldout": ("unit", heldout),
        **coords_extra,
    }
    for name, values in columns.items():
        coords[_coord_name(name, taken, "trial")] = ("trial", values)
    for name, values in units["columns"].items():
        key = _coord_name(name, taken | set(coords), "unit")
        coords[key] = ("unit", values)
    return coords
