"""One NWB session's content as numpy arrays: what :func:`disrnn.data.nwb.read_session` returns.

:class:`Session` holds the units (spike times, observation intervals, areas, columns), the
interval tables (:class:`Table`), the TimeSeries asked for (:class:`Series`) and, for a
simulated file, the :class:`GroundTruth`; it holds no open file handle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Series:
    """One TimeSeries read into memory.

    Attributes:
        name: the object's name in the file.
        path: where it lives, e.g. ``processing/behavior/Position/hand``.
        timestamps: (sample,) float64 seconds (built from ``starting_time`` and ``rate``
            when the file stores no timestamps).
        data: (sample, channel) float64 values in ``unit`` (``conversion`` and ``offset``
            applied; a 1-d series has one channel, more dims are flattened).
        unit: the series' ``unit`` string.
    """

    name: str
    path: str
    timestamps: np.ndarray
    data: np.ndarray
    unit: str = ""

    @property
    def dt(self) -> float:
        """Median sampling interval in seconds (``inf`` for a single sample)."""
        if len(self.timestamps) < 2:
            return float("inf")
        return float(np.median(np.diff(self.timestamps)))

    @property
    def extent(self) -> tuple[float, float]:
        """Time covered, each sample standing for half an interval on either side."""
        if len(self.timestamps) == 0:
            return (float("nan"), float("nan"))
        half = 0.0 if not np.isfinite(self.dt) else self.dt / 2
        return (float(self.timestamps[0] - half), float(self.timestamps[-1] + half))


@dataclass(frozen=True)
class Table:
    """An interval table (``nwb.trials`` or ``nwb.intervals[name]``).

    Attributes:
        name: ``"trials"`` or the interval table's name.
        ids: (row,) int64 NWB row ids.
        columns: column name -> (row,) array; text and bytes columns are str arrays.
        skipped: names of columns not kept (ragged, references, multi-dimensional).
    """

    name: str
    ids: np.ndarray
    columns: dict[str, np.ndarray]
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroundTruth:
    """The ``ground_truth`` processing module of a simulated session.

    Attributes:
        latents: Series (sample, latent) true latents.
        rates: Series (sample, unit) true rates (Hz for spikes; noiseless mean otherwise).
        latent_group: (latent,) int group of each latent.
        latent_system: (latent,) str system name of each latent.
        A: (unit, latent) float; B: (latent, unit) float; bias: (unit,) float, in the
            unit-table order of the file.
    """

    latents: Series
    rates: Series
    latent_group: np.ndarray
    latent_system: np.ndarray
    A: np.ndarray
    B: np.ndarray
    bias: np.ndarray


@dataclass(frozen=True)
class Session:
    """What :func:`disrnn.data.nwb.read_session` returns: one NWB file's content as numpy arrays.

    Attributes:
        path: the file read.
        identifier: the NWB file's identifier.
        unit_ids: (unit,) int64 ids of the Units table (empty without a Units table).
        spike_times: one sorted float64 array of spike times (s) per unit.
        obs_intervals: one (interval, 2) float64 array per unit, or None when the Units
            table has no ``obs_intervals`` column.
        area: (unit,) str brain area (electrodes ``location``), ``"unknown"`` when absent.
        unit_columns: other scalar unit columns (e.g. ``heldout``, quality labels).
        tables: every interval table by name (``"trials"`` for ``nwb.trials``).
        series: the TimeSeries asked for by name, read into memory.
        series_paths: name -> paths of every TimeSeries in the file.
        ground_truth: the simulated truth, or None.
        extent: (start, end) seconds: the span of spike times, observation intervals and
            interval-table start/stop times (NaN, NaN when there are none).
        has_units: whether the file has a Units table with spike times.
    """

    path: Path
    identifier: str
    unit_ids: np.ndarray
    spike_times: list[np.ndarray]
    obs_intervals: list[np.ndarray] | None
    area: np.ndarray
    unit_columns: dict[str, np.ndarray]
    tables: dict[str, Table]
    series: dict[str, Series]
    series_paths: dict[str, list[str]]
    ground_truth: GroundTruth | None
    extent: tuple[float, float]
    has_units: bool = field(default=True)

    def table(self, name: str) -> Table:
        """The interval table ``name``.

        Raises:
            ValueError: no such table (the message lists the tables in the file).
        """
        if name not in self.tables:
            avail = ", ".join(sorted(self.tables)) or "none"
            raise ValueError(
                f"{self.path.name} has no interval table {name!r}; available tables: {avail}"
            )
        return self.tables[name]
