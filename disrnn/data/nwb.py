"""Read one NWB session (units, interval tables, TimeSeries, simulated ground truth).

:func:`read_session` opens the file once with pynwb, copies what binning needs into numpy
arrays and closes the file, so the returned :class:`Session` holds no open handle.

Rules applied to spike times (per unit):

- NaN, infinite or negative spike times -> ``ValueError`` naming the unit id.
- Unsorted spike times -> sorted, with one logged warning per file giving the number of
  such units and the first few ids (counts per bin do not depend on the order, so
  nothing is lost; the stored file is not changed).
- A unit with no spikes is kept (all-zero counts); only an explicit unit filter drops it.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np

from disrnn.data.session import GroundTruth, Series, Session, Table

log = logging.getLogger(__name__)

#: Unit-table columns that are not per-unit metadata.
_UNIT_SKIP = {"spike_times", "obs_intervals", "electrodes", "electrode_group", "waveforms"}


# ------------------------------------------------------------------------------ helpers
def _as_text(values: np.ndarray) -> np.ndarray:
    """bytes/object/str array -> numpy str array."""
    out = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]
    return np.asarray(out, dtype=str)


def _column_array(col) -> np.ndarray | None:
    """A scalar table column as a 1-d numpy array, or None when it cannot be one."""
    from hdmf.common.table import DynamicTableRegion, VectorIndex

    if isinstance(col, VectorIndex | DynamicTableRegion):
        return None
    data = col.data[:] if hasattr(col.data, "shape") else col.data
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError):
        return None
    if arr.ndim != 1:
        return None
    if arr.dtype.kind in "SUO":
        if arr.dtype.kind == "O" and not all(isinstance(v, str | bytes) for v in arr):
            return None
        return _as_text(arr)
    if arr.dtype.kind not in "biuf":
        return None
    return arr


def _read_table(name: str, table) -> Table:
    ids = np.asarray(table.id[:], dtype=np.int64)
    columns: dict[str, np.ndarray] = {}
    skipped = []
    for col_name in table.colnames:
        arr = _column_array(table[col_name])
        if arr is None or len(arr) != len(ids):
            skipped.append(col_name)
            continue
        columns[col_name] = arr
    if skipped:
        log.debug("table %s: columns not kept (ragged or references): %s", name, skipped)
    return Table(name=name, ids=ids, columns=columns, skipped=tuple(skipped))


def _object_path(obj, nwb) -> str:
    """``acquisition/x``, ``processing/behavior/Position/x``, ``stimulus/x``, ..."""
    parts = []
    while obj is not None and obj.parent is not None and obj is not nwb:
        parts.append(obj.name)
        if obj.parent is nwb:
            for group in ("acquisition", "processing", "stimulus", "analysis"):
                holder = getattr(nwb, group, None) or {}
                if holder.get(obj.name) is obj:
                    parts.append(group)
                    break
        obj = obj.parent
    return "/".join(reversed(parts))


def _read_series(ts, path: str) -> Series:
    data = np.asarray(ts.data[:], dtype=np.float64)
    conversion = float(getattr(ts, "conversion", 1.0) or 1.0)
    offset = float(getattr(ts, "offset", 0.0) or 0.0)
    if conversion != 1.0 or offset != 0.0:  # stored integers -> the series' unit
        data = data * conversion + offset
    if data.ndim == 1:
        data = data[:, None]
    elif data.ndim > 2:
        data = data.reshape(len(data), -1)
    if ts.timestamps is not None:
        t = np.asarray(ts.timestamps[:], dtype=np.float64)
    else:
        start = float(ts.starting_time or 0.0)
        t = start + np.arange(len(data), dtype=np.float64) / float(ts.rate)
    if len(t) != len(data):
        raise ValueError(f"TimeSeries {path!r} has {len(data)} samples but {len(t)} timestamps")
    if len(t) > 1 and np.any(np.diff(t) < 0):
        order = np.argsort(t, kind="stable")
        t, data = t[order], data[order]
        log.warning("TimeSeries %s: timestamps were not sorted; sorted them", path)
    return Series(name=ts.name, path=path, timestamps=t, data=data, unit=str(ts.unit or ""))


def _find_series(nwb) -> dict[str, list]:
    """name -> [(path, TimeSeries)] for every TimeSeries in the file."""
    from pynwb.base import TimeSeries

    found: dict[str, list] = {}
    for obj in nwb.objects.values():
        if isinstance(obj, TimeSeries):
            found.setdefault(obj.name, []).append((_object_path(obj, nwb), obj))
    for name in found:
        found[name].sort(key=lambda pair: pair[0])
    return found


def _pick_series(found: dict[str, list], name: str, path: Path):
    """Resolve a name (or a path such as ``processing/behavior/x``) to one TimeSeries."""
    if name in found:
        matches = found[name]
    else:
        matches = [pair for pairs in found.values() for pair in pairs if pair[0] == name]
    if not matches:
        avail = ", ".join(sorted(found)) or "none"
        raise ValueError(
            f"{path.name} has no TimeSeries named {name!r}; TimeSeries in the file: {avail}"
        )
    if len(matches) > 1:
        paths = ", ".join(p for p, _ in matches)
        raise ValueError(
            f"{path.name} has several TimeSeries named {name!r} ({paths}); "
            "give the full path instead of the name"
        )
    return matches[0]


def _check_spikes(unit_id: int, times: np.ndarray, path: Path, unsorted: list[int]) -> np.ndarray:
    """``times`` checked and sorted; the id of a unit that needed sorting joins ``unsorted``."""
    if times.size and not np.all(np.isfinite(times)):
        n = int(np.sum(~np.isfinite(times)))
        raise ValueError(
            f"{path.name}: unit {unit_id} has {n} NaN or infinite spike times; spike times "
            "must be finite, non-negative seconds"
        )
    if times.size and times.min() < 0:
        raise ValueError(
            f"{path.name}: unit {unit_id} has negative spike times (min {times.min():g} s); "
            "spike times must be finite, non-negative seconds"
        )
    if times.size > 1 and np.any(np.diff(times) < 0):
        unsorted.append(unit_id)
        times = np.sort(times, kind="stable")
    return times


def _warn_unsorted(unsorted: list[int], n_units: int, path: Path, shown: int = 5) -> None:
    if unsorted:
        ids = ", ".join(str(u) for u in unsorted[:shown])
        more = f" and {len(unsorted) - shown} more" if len(unsorted) > shown else ""
        log.warning(
            "%s: spike times were not sorted in %d of %d units (unit %s%s); sorted them",
            path.name,
            len(unsorted),
            n_units,
            ids,
            more,
        )


def _ragged(units, name: str) -> list[np.ndarray]:
    """The per-unit pieces of a ragged Units column, as float64 arrays."""
    index = units[name]  # VectorIndex
    flat = np.asarray(index.target.data[:], dtype=np.float64)
    ends = np.asarray(index.data[:], dtype=np.int64)
    starts = np.concatenate([[0], ends[:-1]])
    return [flat[s:e] for s, e in zip(starts, ends, strict=True)]


def _unit_areas(nwb, units, n: int) -> np.ndarray:
    area = np.full(n, "unknown", dtype=object)
    if "electrodes" in units.colnames and nwb.electrodes is not None:
        electrodes = nwb.electrodes
        if "location" in electrodes.colnames:
            loc = _as_text(np.asarray(electrodes["location"].data[:]))
            from hdmf.common.table import VectorIndex

            col = units["electrodes"]
            if isinstance(col, VectorIndex):  # several electrodes per unit: the first one
                rows = np.asarray(col.target.data[:], dtype=np.int64)
                ends = np.asarray(col.data[:], dtype=np.int64)
                starts = np.concatenate([[0], ends[:-1]])
                for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
                    if e > s:
                        area[i] = loc[rows[s]]
            else:
                rows = np.asarray(col.data[:], dtype=np.int64)
                area[:] = loc[rows]
            return area.astype(str)
    if "electrode_group" in units.colnames:
        for i, group in enumerate(units["electrode_group"].data[:]):
            if getattr(group, "location", None):
                area[i] = str(group.location)
        return area.astype(str)
    for col in ("location", "brain_area", "area"):
        if col in units.colnames:
            arr = _column_array(units[col])
            if arr is not None and arr.dtype.kind == "U":
                return arr
    return area.astype(str)


def _read_ground_truth(nwb, found: dict[str, list], path: Path) -> GroundTruth | None:
    if "ground_truth" not in nwb.processing:
        return None
    mod = nwb.processing["ground_truth"]
    try:
        latents = _read_series(mod["latents"], "processing/ground_truth/latents")
        rates = _read_series(mod["rates"], "processing/ground_truth/rates")
        info = mod["latent_info"]
        weights = mod["unit_weights"]
        group = np.asarray(info["group"].data[:], dtype=np.int64)
        system = (
            _as_text(np.asarray(info["system"].data[:]))
            if "system" in info.colnames
            else np.full(len(group), "", dtype=str)
        )
        A = np.asarray(weights["A"].data[:], dtype=np.float64)
        B = np.asarray(weights["B_T"].data[:], dtype=np.float64).T
        bias = np.asarray(weights["bias"].data[:], dtype=np.float64)
    except KeyError as err:
        raise ValueError(
            f"{path.name}: the ground_truth processing module lacks {err}; expected TimeSeries "
            "latents and rates and tables latent_info (group, system) and unit_weights "
            "(A, B_T, bias)"
        ) from None
    return GroundTruth(latents, rates, group, system, A, B, bias)


def _open_error(path: Path, err: Exception) -> ValueError:
    return ValueError(
        f"cannot read {str(path)!r} as an NWB file ({type(err).__name__}: {err}); "
        "the file may be truncated or not NWB"
    )


# --------------------------------------------------------------------------- public API
def read_session(path: str | os.PathLike, series: tuple[str, ...] | list[str] = ()) -> Session:
    """Read one NWB file into a :class:`Session` (see its attributes).

    Args:
        path: the ``.nwb`` file.
        series: names (or full paths) of TimeSeries to read into ``Session.series``;
            they are searched everywhere in the file (acquisition, processing modules,
            nested containers such as ``Position``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not HDF5/NWB or is truncated; a requested TimeSeries is
            not in the file (the message lists the names that are); NaN, infinite or
            negative spike times (the message names the unit).
    """
    import h5py
    import pynwb

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no NWB file at {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder, not an NWB file")
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as err:
        raise _open_error(path, err) from err
    if not is_hdf5:
        raise ValueError(
            f"{str(path)!r} is not an NWB file (not HDF5); give a .nwb file written by pynwb"
        )
    try:
        with h5py.File(path, "r") as f:
            if "nwb_version" not in f.attrs:
                raise ValueError(
                    f"{str(path)!r} is an HDF5 file but not NWB (no nwb_version attribute)"
                )
    except OSError as err:
        raise _open_error(path, err) from err

    # pynwb warns about harmless schema quirks of other labs' converters (e.g. an
    # OpticalSeries in the real DANDI file); they are logged at debug level, not printed.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            io = pynwb.NWBHDF5IO(str(path), "r")
            nwb = io.read()
        except ValueError:
            raise
        except Exception as err:  # h5py/hdmf errors on damaged files vary widely
            raise _open_error(path, err) from err
        try:
            return _read_open(nwb, path, tuple(series))
        except (OSError, KeyError, RuntimeError) as err:
            raise _open_error(path, err) from err
        finally:
            io.close()
            for w in caught:
                log.debug("%s: %s", path.name, w.message)


def _read_open(nwb, path: Path, want: tuple[str, ...]) -> Session:
    units = nwb.units
    has_units = units is not None and "spike_times" in units.colnames
    unit_ids = np.zeros(0, dtype=np.int64)
    spikes: list[np.ndarray] = []
    obs: list[np.ndarray] | None = None
    area = np.zeros(0, dtype=str)
    unit_columns: dict[str, np.ndarray] = {}
    if has_units:
        unit_ids = np.asarray(units.id[:], dtype=np.int64)
        raw = _ragged(units, "spike_times")
        unsorted: list[int] = []
        spikes = [
            _check_spikes(int(u), t, path, unsorted) for u, t in zip(unit_ids, raw, strict=True)
        ]
        _warn_unsorted(unsorted, len(unit_ids), path)
        if "obs_intervals" in units.colnames:
            obs = [
                np.asarray(piece, dtype=np.float64).reshape(-1, 2)
                for piece in _ragged(units, "obs_intervals")
            ]
        area = _unit_areas(nwb, units, len(unit_ids))
        for name in units.colnames:
            if name in _UNIT_SKIP:
                continue
            arr = _column_array(units[name])
            if arr is not None and len(arr) == len(unit_ids):
                unit_columns[name] = arr

    tables: dict[str, Table] = {}
    if nwb.trials is not None:
        tables["trials"] = _read_table("trials", nwb.trials)
    for name, table in (nwb.intervals or {}).items():
        if name not in tables:
            tables[name] = _read_table(name, table)

    found = _find_series(nwb)
    series = {}
    for name in want:
        ts_path, ts = _pick_series(found, name, path)
        series[name] = _read_series(ts, ts_path)

    times = [t[[0, -1]] for t in spikes if t.size]
    if obs:
        times += [o.ravel() for o in obs if o.size]
    for table in tables.values():
        for col in ("start_time", "stop_time"):
            if col in table.columns:
                vals = table.columns[col].astype(np.float64)
                times.append(vals[np.isfinite(vals)])
    allt = np.concatenate(times) if times else np.zeros(0)
    extent = (float(allt.min()), float(allt.max())) if allt.size else (np.nan, np.nan)

    return Session(
        path=path,
        identifier=str(nwb.identifier),
        unit_ids=unit_ids,
        spike_times=spikes,
        obs_intervals=obs,
        area=np.asarray(area, dtype=str),
        unit_columns=unit_columns,
        tables=tables,
        series=series,
        series_paths={k: [p for p, _ in v] for k, v in found.items()},
        ground_truth=_read_ground_truth(nwb, found, path),
        extent=extent,
        has_units=has_units,
    )
