"""History bins before each trial's window (``pre_activity``, ``pre_mask``).

A model with L history bins cannot score the first L bins of a window from the window
alone; these bins give it the recording just before. For a trial aligned at ``a`` with
window start ``w`` and bin width ``bw`` the P history bins are the half-open bins
``a + w + k * bw`` for k = -P..-1: the same grid as the window bins (k = 0..n - 1),
counted (:func:`count_spikes`) or averaged (:func:`bin_series`) by the same code.

A history bin is *covered* (``pre_mask`` True) when the recording holds it:

- spikes, with ``obs_intervals``: the bin lies wholly inside an interval of every unit
  (the window's ``mask`` rule); a unit's counts outside its own intervals are 0;
- spikes, without ``obs_intervals``: the bin lies wholly inside the session's extent
  (:attr:`disrnn.data.session.Session.extent`: the span of spike times and interval-table
  times, the span that also decides which trials are dropped as outside the recording);
  in a simulated file (it has ``ground_truth``) the bin must also hold a sample of the
  true rates, since the simulator records only the trials' bins;
- continuous: the series has a sample in the bin (a series sampled more coarsely than
  the bins: the bin centre lies within its sampled span) and the value is finite.

Uncovered bins hold 0. History bins may overlap the previous trial's window: they are
inputs, never scored.
"""

from __future__ import annotations

import numpy as np

from disrnn.data.bins import _TOL, bin_series, count_spikes, observed_bins
from disrnn.data.session import Series, Session


def pre_edges(window_start: float, bin_width: float, n_pre: int) -> np.ndarray:
    """(n_pre + 1,) edges relative to the alignment: window_start + k * bin_width, k = -P..0."""
    return window_start + np.arange(-n_pre, 1) * bin_width


def has_samples(series: Series, align: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(trial, time) bool: ``series`` has a sample in the half-open bin ``align + edges``.

    Samples are assigned to bins by :func:`count_spikes`, the rule :func:`bin_series`
    averages with. A series sampled more coarsely than the bins (median interval dt >
    bin width) is interpolated by :func:`bin_series`; there a bin counts when a sample
    lies within dt / 2 of its centre.
    """
    t = series.timestamps
    shape = (len(align), len(edges) - 1)
    if len(t) == 0:
        return np.zeros(shape, dtype=bool)
    width = float(np.min(np.diff(edges)))
    if series.dt > width * (1 + 1e-9):
        centre = align[:, None] + (edges[None, :-1] + edges[None, 1:]) / 2  # (trial, time)
        right = np.clip(np.searchsorted(t, centre), 0, len(t) - 1)
        left = np.clip(right - 1, 0, len(t) - 1)
        nearest = np.minimum(np.abs(t[left] - centre), np.abs(t[right] - centre))
        return nearest <= series.dt / 2 + _TOL
    return count_spikes([t], align, edges)[:, :, 0] > 0


def _inside(extent: tuple[float, float], align: np.ndarray, edges: np.ndarray) -> np.ndarray:
    lo = align[:, None] + edges[None, :-1]
    hi = align[:, None] + edges[None, 1:]
    return (lo >= extent[0] - _TOL) & (hi <= extent[1] + _TOL)


def pre_window_spikes(
    session: Session, keep: np.ndarray, align: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """History counts of the kept units and their coverage.

    Args:
        session: the session read from the NWB file.
        keep: (unit,) bool, the units kept by the filters (Units-table order).
        align: (trial,) float64 alignment times (s).
        edges: (P + 1,) float64 history bin edges relative to the alignment.

    Returns:
        ((trial, pre_time, unit) int32 counts, 0 where not covered;
        (trial, pre_time) bool covered).
    """
    pos = np.flatnonzero(keep)
    counts = count_spikes([session.spike_times[i] for i in pos], align, edges)
    if session.obs_intervals is not None:
        observed = observed_bins([session.obs_intervals[i] for i in pos], align, edges)
        counts[~observed] = 0
        covered = observed.all(axis=2)
    else:
        covered = _inside(session.extent, align, edges)
    if session.ground_truth is not None:
        covered &= has_samples(session.ground_truth.rates, align, edges)
    counts[~covered] = 0
    return counts, covered


def pre_window_series(
    series: Series, align: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """History bin means of a continuous series and their coverage.

    Returns:
        ((trial, pre_time, channel) float32 bin means (:func:`bin_series`), 0 where not
        covered; (trial, pre_time) bool covered).
    """
    values = bin_series(series, align, edges)
    covered = has_samples(series, align, edges) & np.isfinite(values).all(axis=2)
    values[~covered] = 0.0
    return values.astype(np.float32), covered


def pre_window_vars(
    session: Session,
    kind: str,
    keep: np.ndarray,
    align: np.ndarray,
    window_start: float,
    bin_width: float,
    n_pre: int,
    series: Series | None = None,
) -> tuple[dict, dict, float]:
    """The dataset's history variables (contract in ``docs/design.md``).

    Args:
        session: the session read from the NWB file.
        kind: ``"spike_counts"`` or ``"continuous"`` (then ``series`` is the activity).
        keep: (unit,) bool units kept by the filters.
        align: (trial,) float64 alignment times of the kept trials (s).
        window_start: the window's first edge relative to the alignment (s).
        bin_width: seconds.
        n_pre: P >= 0 history bins.
        series: the continuous activity TimeSeries (kind ``"continuous"`` only).

    Returns:
        (data_vars, coords, seconds covered = P * bin_width): with P = 0 both dicts are
        empty; else data_vars ``pre_activity`` (trial, pre_time, unit) with attrs
        ``kind`` and ``pre_mask`` (trial, pre_time) bool, coords ``pre_time`` (P,) bin
        centres in s relative to the alignment.
    """
    if n_pre <= 0:
        return {}, {}, 0.0
    edges = pre_edges(window_start, bin_width, n_pre)
    if kind == "spike_counts":
        values, covered = pre_window_spikes(session, keep, align, edges)
    else:
        values, covered = pre_window_series(series, align, edges)
    data_vars = {
        "pre_activity": (("trial", "pre_time", "unit"), values, {"kind": kind}),
        "pre_mask": (("trial", "pre_time"), covered),
    }
    coords = {"pre_time": (edges[:-1] + edges[1:]) / 2}
    return data_vars, coords, float(n_pre * bin_width)
