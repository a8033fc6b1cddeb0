"""Write a :class:`SimulatedSession` as an ordinary NWB file, and read its truth back.

The layout is the contract in ``docs/design.md`` ("The simulated NWB layout"):

- spikes: ``nwb.units`` (one row per unit, ids 0..N-1, sorted spike times in s, each
  unit linked to its own row of the electrodes table, ``location="simulated"``, or the
  unit's area ``area{g}`` with ``area_overlap``: :mod:`disrnn.simulate.areas`);
  continuous: no units, ``nwb.acquisition["continuous_activity"]`` (n_samples, N);
- ``nwb.trials``: ``start_time``, ``stop_time``, ``condition`` (str);
- ``nwb.processing["ground_truth"]``: TimeSeries ``latents`` (n_samples, K) and ``rates``
  (n_samples, N; Hz = expected count / bin width for spikes, the noiseless mean for
  continuous), DynamicTables ``latent_info`` (``group``, ``system``) and ``unit_weights``
  (``A`` (N, K), ``B_T`` (N, K), ``bias`` (N));
- ``nwb.processing["behavior"]``: TimeSeries ``behavior`` (n_samples, 2).

n_samples = trial x time: the recorded bins in time order; every TimeSeries has
timestamps at the bin centres trial_start + (k + 0.5) * bin_width.

Spike times: each of the c counts of bin [t_k, t_k + w) becomes a time drawn uniformly in
[t_k + m w, t_k + (1 - m) w) with m = ``EDGE_MARGIN``, so that ``np.histogram`` with edges
trial_start + k * bin_width recovers the counts exactly despite rounding of the edges.
"""

from __future__ import annotations

import os
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from hdmf.backends.hdf5 import H5DataIO
from hdmf.common import DynamicTable, DynamicTableRegion, VectorData, VectorIndex
from pynwb import NWBHDF5IO, NWBFile, TimeSeries
from pynwb.misc import Units

from disrnn._atomic import atomic_file
from disrnn.simulate.generate import SimulatedSession

#: what the stored B is, by ``PresetConfig.network``
ENCODERS = {
    "least-squares": "least-squares map from tanh(x_{t-1}) to z_t",
    "trained": "encoder trained with A so that z_t ~ B tanh(A z_{t-1} + a) + b",
}
EDGE_MARGIN = 1e-3  # fraction of a bin kept free of spikes at each edge
SESSION_START = datetime(2000, 1, 1, tzinfo=UTC)  # fixed, so files differ only by content


def _packed(data: np.ndarray) -> H5DataIO:
    """Large arrays are stored gzip-compressed (transparent to readers)."""
    return H5DataIO(np.asarray(data), compression="gzip", compression_opts=4, shuffle=True)


def bin_centres(session: SimulatedSession) -> np.ndarray:
    """(trial * time,) float64 centre of every recorded bin, in seconds, time order."""
    n_time = session.activity.shape[1]
    k = np.arange(n_time) + 0.5
    return (session.trial_start[:, None] + k[None, :] * session.bin_width).ravel()


def spike_times(session: SimulatedSession, rng: np.random.Generator) -> list[np.ndarray]:
    """Sorted spike times (s) of each unit from the counts; one array per unit.

    Each count of bin k of trial r is placed uniformly in
    trial_start[r] + (k + [EDGE_MARGIN, 1 - EDGE_MARGIN)) * bin_width.
    """
    counts = session.activity  # (trial, time, unit)
    n_trials, n_time, n_units = counts.shape
    left = session.trial_start[:, None] + np.arange(n_time)[None, :] * session.bin_width
    out = []
    for unit in range(n_units):
        c = counts[:, :, unit].ravel()
        starts = np.repeat(left.ravel(), c)
        offsets = rng.uniform(EDGE_MARGIN, 1.0 - EDGE_MARGIN, starts.size) * session.bin_width
        out.append(np.sort(starts + offsets))
    return out


def _units_table(times: list[np.ndarray], electrodes: DynamicTable) -> Units:
    """Units table (ids 0..N-1, unit i on electrode i) built from whole arrays.

    Equivalent to N calls of ``NWBFile.add_unit`` but avoids hdmf converting every
    spike time of a Python list one by one when the file is written.
    """
    n_units = len(times)
    spikes = VectorData(
        name="spike_times",
        description="spike times (s), sorted within each unit",
        data=_packed(np.concatenate(times) if n_units else np.zeros(0)),
    )
    region = DynamicTableRegion(
        name="electrodes",
        description="the unit's virtual electrode",
        data=np.arange(n_units),
        table=electrodes,
    )
    return Units(
        name="units",
        description="simulated units (Poisson counts placed uniformly within each bin)",
        id=np.arange(n_units),
        columns=[
            spikes,
            VectorIndex(
                name="spike_times_index",
                data=np.cumsum([t.size for t in times]),
                target=spikes,
            ),
            region,
            VectorIndex(name="electrodes_index", data=np.arange(1, n_units + 1), target=region),
        ],
        electrode_table=electrodes,
    )


def _add_electrodes(nwb: NWBFile, session: SimulatedSession) -> None:
    """One virtual electrode per unit, in unit order; ``location`` = the unit's area
    (``session.unit_area``, one electrode group per area) or ``"simulated"``."""
    device = nwb.create_device(name="simulator", description="disrnn.simulate")
    n_units = session.activity.shape[2]
    areas = np.full(n_units, "simulated") if session.unit_area is None else session.unit_area
    groups = {
        a: nwb.create_electrode_group(
            name=str(a),
            description="one virtual electrode per simulated unit"
            + ("" if session.unit_area is None else f" of {a} (read by one latent group)"),
            location=str(a),
            device=device,
        )
        for a in dict.fromkeys(areas.tolist())
    }
    for a in areas:
        nwb.add_electrode(group=groups[a], location=str(a))


def _build(session: SimulatedSession) -> NWBFile:
    """The in-memory NWB file of ``session`` (layout: the module docstring)."""
    cfg = session.config
    nwb = NWBFile(
        session_description=(
            f"disrnn simulated session: preset {session.preset!r}, seed {session.seed}; "
            f"{cfg.description}"
        ),
        identifier=f"disrnn-simulate-{session.preset}-seed{session.seed}",
        session_start_time=SESSION_START,
        notes=f"PresetConfig: {cfg!r}",
        source_script="disrnn.simulate",
        source_script_file_name="disrnn/simulate/nwb_writer.py",
    )
    stamps = bin_centres(session)
    _add_activity(nwb, session, stamps)
    _add_trials(nwb, session)
    truth = nwb.create_processing_module(
        name="ground_truth", description="the model that generated this session"
    )
    _add_truth_series(truth, session, stamps)
    _add_truth_tables(truth, session)
    behavior = nwb.create_processing_module(name="behavior", description="simulated behavior")
    behavior.add(
        TimeSeries(
            name="behavior",
            data=_packed(session.behavior.reshape(-1, 2)),
            timestamps=stamps,
            unit="a.u.",
            description="linear readout of the first latent group plus noise (n_samples, 2)",
        )
    )
    return nwb


def _add_activity(nwb: NWBFile, session: SimulatedSession, stamps: np.ndarray) -> None:
    """Spikes: electrodes and the units table; continuous: the acquisition TimeSeries."""
    if session.kind == "spike_counts":
        _add_electrodes(nwb, session)
        # Spike placement has its own stream, derived from the session seed, so the
        # file is reproducible and simulate()'s draws are not disturbed.
        rng = np.random.default_rng([session.seed, 0x5EED])
        nwb.units = _units_table(spike_times(session, rng), nwb.electrodes)
        return
    nwb.add_acquisition(
        TimeSeries(
            name="continuous_activity",
            data=_packed(session.activity.reshape(-1, session.activity.shape[2])),
            timestamps=stamps,
            unit="a.u.",
            description="simulated continuous activity x = A z + a + noise, (n_samples, N)",
        )
    )


def _add_trials(nwb: NWBFile, session: SimulatedSession) -> None:
    """The trials table: start, stop (start + time bins x bin width) and condition."""
    n_time = session.activity.shape[1]
    nwb.add_trial_column(name="condition", description=f"condition label ({session.systems[0]})")
    stops = session.trial_start + n_time * session.bin_width
    for start, stop, cond in zip(session.trial_start, stops, session.condition, strict=True):
        nwb.add_trial(start_time=float(start), stop_time=float(stop), condition=str(cond))


def _add_truth_series(truth, session: SimulatedSession, stamps: np.ndarray) -> None:
    """The ground truth's TimeSeries ``latents`` and ``rates`` (Hz for spikes)."""
    truth.add(
        TimeSeries(
            name="latents",
            data=_packed(session.latents.reshape(-1, session.latents.shape[-1])),
            timestamps=stamps,
            unit="z-score",
            description="true latents z_t (n_samples, K), each dimension z-scored",
        )
    )
    if session.kind == "spike_counts":
        rates, unit, what = session.rates / session.bin_width, "Hz", "expected count / bin width"
    else:
        rates, unit, what = session.rates, "a.u.", "noiseless mean A z + a"
    truth.add(
        TimeSeries(
            name="rates",
            data=_packed(rates.reshape(-1, session.activity.shape[2])),
            timestamps=stamps,
            unit=unit,
            description=f"true rates (n_samples, N): {what}",
        )
    )


def _add_truth_tables(truth, session: SimulatedSession) -> None:
    """The ground truth's tables ``latent_info`` (per latent) and ``unit_weights`` (per unit)."""
    truth.add(
        DynamicTable(
            name="latent_info",
            description="one row per latent dimension",
            columns=[
                VectorData(
                    name="group",
                    description="latent group index",
                    data=np.asarray(session.latent_group, dtype=np.int64),
                ),
                VectorData(
                    name="system",
                    description="the dynamical system of the latent's group",
                    data=[session.systems[g] for g in session.latent_group],
                ),
            ],
        )
    )
    encoder = ENCODERS[session.config.network]
    truth.add(
        DynamicTable(
            name="unit_weights",
            description="one row per unit in unit-table order; W = A B = A @ B_T.T",
            id=np.arange(session.activity.shape[2]),
            columns=[
                VectorData(name="A", description="readout A (N, K)", data=session.A),
                VectorData(
                    name="B_T",
                    description=f"true encoder B transposed (N, K): {encoder}",
                    data=np.ascontiguousarray(session.B.T),
                ),
                VectorData(name="bias", description="readout bias a (N)", data=session.bias),
            ],
        )
    )


def write_nwb(session: SimulatedSession, path: str | os.PathLike) -> Path:
    """Write ``session`` to ``path`` (NWB, HDF5) atomically; returns the path.

    Raises:
        PermissionError / OSError: the output folder cannot be written.
    """
    path = Path(path)
    nwb = _build(session)
    with atomic_file(path) as tmp, warnings.catch_warnings():
        # the temporary name ends in .part; the final name is the caller's
        warnings.filterwarnings("ignore", message=".*does not end in '.nwb'")
        with NWBHDF5IO(str(tmp), mode="w") as io:
            io.write(nwb)
    return path


def read_truth(path: str | os.PathLike) -> dict[str, np.ndarray | list | float | str]:
    """The stored ground truth of a simulated NWB file, reshaped per trial.

    Returns a dict with ``latents`` (trial, time, latent), ``rates`` (trial, time, unit)
    expected counts per bin (spikes) or noiseless mean (continuous), ``behavior``
    (trial, time, 2), ``latent_group`` (latent,), ``systems`` (group,) list,
    ``A`` (unit, latent), ``B`` (latent, unit), ``bias`` (unit,), ``timestamps``
    (trial, time), ``trial_start``, ``trial_stop``, ``condition`` (trial,), ``bin_width``,
    ``kind`` and ``session_description``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file has no ``ground_truth`` processing module.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no NWB file at {str(path)!r}")
    with NWBHDF5IO(str(path), mode="r") as io:
        nwb = io.read()
        if "ground_truth" not in nwb.processing:
            raise ValueError(
                f"{str(path)!r} has no 'ground_truth' processing module; "
                f"it was not written by disrnn.simulate (modules: {sorted(nwb.processing)})"
            )
        gt = nwb.processing["ground_truth"]
        trials = nwb.trials.to_dataframe()
        start = trials["start_time"].to_numpy()
        stop = trials["stop_time"].to_numpy()
        n_trials = len(start)
        stamps = gt["latents"].timestamps[:]
        n_time = stamps.size // n_trials
        bin_width = float((stop[0] - start[0]) / n_time)
        kind = "spike_counts" if nwb.units is not None else "continuous"
        info = gt["latent_info"]
        weights = gt["unit_weights"]
        group = np.asarray(info["group"].data[:])
        system_per_latent = [str(s) for s in info["system"].data[:]]
        systems = [system_per_latent[int(np.flatnonzero(group == g)[0])] for g in np.unique(group)]
        rates = gt["rates"].data[:]
        if kind == "spike_counts":
            rates = rates * bin_width

        def per_trial(a: np.ndarray) -> np.ndarray:
            return np.asarray(a).reshape(n_trials, n_time, *np.shape(a)[1:])

        return {
            "latents": per_trial(gt["latents"].data[:]),
            "rates": per_trial(rates),
            "behavior": per_trial(nwb.processing["behavior"]["behavior"].data[:]),
            "timestamps": per_trial(stamps),
            "latent_group": group,
            "systems": systems,
            "A": np.asarray(weights["A"].data[:]),
            "B": np.asarray(weights["B_T"].data[:]).T,
            "bias": np.asarray(weights["bias"].data[:]),
            "trial_start": start,
            "trial_stop": stop,
            "condition": trials["condition"].astype(str).to_numpy(),
            "bin_width": bin_width,
            "kind": kind,
            "session_description": nwb.session_description,
        }
