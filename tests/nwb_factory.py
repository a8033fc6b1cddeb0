"""Build small NWB files for the data tests (the layout of docs/design.md).

``write_nwb`` writes whatever parts a test needs: units (spike times as given, unsorted,
NaN and negative values included: pynwb does not check them), electrodes with a
``location``, extra unit columns, ``obs_intervals``, ``nwb.trials`` and other interval
tables, TimeSeries at any path, and a ``ground_truth`` processing module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pynwb
from hdmf.common import DynamicTable, VectorData
from pynwb.behavior import BehavioralTimeSeries, Position, SpatialSeries
from pynwb.testing.mock.file import mock_NWBFile


def _add_table_columns(table_adder, column_adder, columns: dict) -> None:
    n = len(columns["start_time"])
    for name in columns:
        if name not in ("start_time", "stop_time"):
            column_adder(name=name, description=f"test column {name}")
    for i in range(n):
        table_adder(**{k: v[i] for k, v in columns.items()})


def _series(name: str, data, timestamps=None, rate=None, spatial=False, **extra):
    kwargs = {"name": name, "data": np.asarray(data), "unit": "a.u.", **extra}
    if timestamps is not None:
        kwargs["timestamps"] = np.asarray(timestamps, dtype=np.float64)
    else:
        kwargs["rate"] = float(rate)
        kwargs["starting_time"] = 0.0
    if spatial:
        return SpatialSeries(reference_frame="screen", **{**kwargs, "unit": "meters"})
    return pynwb.TimeSeries(**kwargs)


def write_nwb(
    path: str | Path,
    *,
    spike_times: list | None = None,
    unit_ids: list[int] | None = None,
    locations: list[str] | None = None,
    unit_columns: dict | None = None,
    obs_intervals: list | None = None,
    trials: dict | None = None,
    intervals: dict | None = None,
    timeseries: dict | None = None,
    ground_truth: dict | None = None,
) -> Path:
    """Write a small NWB file and return its path.

    Args:
        spike_times: one list of spike times (s) per unit; None: no Units table.
        unit_ids: NWB ids of the units (default 0..n-1).
        locations: electrode ``location`` of each unit (one electrode per unit).
        unit_columns: extra unit columns, name -> one value per unit.
        obs_intervals: one (interval, 2) list per unit.
        trials: ``nwb.trials`` columns (start_time, stop_time, ...), name -> values.
        intervals: other interval tables, table name -> columns.
        timeseries: path -> dict(data=..., timestamps=... or rate=..., optionally
            conversion=..., offset=...). Paths:
            ``acquisition/NAME``, ``processing/MODULE/NAME``,
            ``processing/MODULE/Position/NAME`` (a SpatialSeries) or
            ``processing/MODULE/BehavioralTimeSeries/NAME``.
        ground_truth: dict(latents=(data, t), rates=(data, t), group=, system=, A=,
            B_T=, bias=) -> ``processing["ground_truth"]``.
    """
    path = Path(path)
    nwb = mock_NWBFile()
    if spike_times is not None:
        n = len(spike_times)
        ids = list(range(n)) if unit_ids is None else list(unit_ids)
        if unit_columns:
            for name in unit_columns:
                nwb.add_unit_column(name=name, description=f"test unit column {name}")
        if locations is not None:
            device = nwb.create_device(name="probe")
            group = nwb.create_electrode_group(
                name="shank0", description="test", location="brain", device=device
            )
            for loc in locations:
                nwb.add_electrode(group=group, location=loc)
        for u in range(n):
            kwargs = {"spike_times": np.asarray(spike_times[u], dtype=np.float64), "id": ids[u]}
            if locations is not None:
                kwargs["electrodes"] = [u]
            if obs_intervals is not None:
                kwargs["obs_intervals"] = np.asarray(obs_intervals[u], dtype=np.float64)
            for name, values in (unit_columns or {}).items():
                kwargs[name] = values[u]
            nwb.add_unit(**kwargs)
    if trials is not None:
        _add_table_columns(nwb.add_trial, nwb.add_trial_column, trials)
    for name, columns in (intervals or {}).items():
        table = pynwb.epoch.TimeIntervals(name=name, description=f"test table {name}")
        _add_table_columns(table.add_row, table.add_column, columns)
        nwb.add_time_intervals(table)
    for ts_path, spec in (timeseries or {}).items():
        parts = ts_path.split("/")
        if parts[0] == "acquisition":
            nwb.add_acquisition(_series(parts[1], **spec))
            continue
        module = nwb.processing.get(parts[1]) or nwb.create_processing_module(
            name=parts[1], description="test module"
        )
        if len(parts) == 3:
            module.add(_series(parts[2], **spec))
        elif parts[2] == "Position":
            holder = module.data_interfaces.get("Position") or Position(name="Position")
            if "Position" not in module.data_interfaces:
                module.add(holder)
            holder.add_spatial_series(_series(parts[3], spatial=True, **spec))
        else:
            holder = module.data_interfaces.get(parts[2]) or BehavioralTimeSeries(name=parts[2])
            if parts[2] not in module.data_interfaces:
                module.add(holder)
            holder.add_timeseries(_series(parts[3], **spec))
    if ground_truth is not None:
        gt = nwb.create_processing_module(name="ground_truth", description="simulated truth")
        for name in ("latents", "rates"):
            data, t = ground_truth[name]
            gt.add(_series(name, data, timestamps=t))
        gt.add(
            DynamicTable(
                name="latent_info",
                description="latent groups",
                columns=[
                    VectorData(name="group", description="group", data=ground_truth["group"]),
                    VectorData(name="system", description="system", data=ground_truth["system"]),
                ],
            )
        )
        gt.add(
            DynamicTable(
                name="unit_weights",
                description="A, B transposed, bias per unit",
                columns=[
                    VectorData(name=k, description=k, data=np.asarray(ground_truth[k]))
                    for k in ("A", "B_T", "bias")
                ],
            )
        )
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def poisson_spikes(rng: np.random.Generator, n_units: int, duration: float, rate: float):
    """Sorted uniform spike times on [0, duration) for each unit (Poisson counts)."""
    return [
        np.sort(rng.uniform(0, duration, size=rng.poisson(rate * duration))) for _ in range(n_units)
    ]
