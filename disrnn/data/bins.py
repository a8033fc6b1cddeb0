"""Counting and averaging onto time bins around alignment times (numpy; no NWB reading).

Bins are half-open ``[start, end)``: for a trial aligned at time ``a`` the bins' edges are
``a + edges``, and :func:`count_spikes` equals ``np.histogram(spike_times - a, edges)``
except that a spike exactly on the last edge belongs to the next window (np.histogram
closes its last bin).

The three binning modules: ``bins.py`` (this one) is the arithmetic on arrays of times,
knowing nothing of NWB or datasets; ``bin_config.py`` is what to bin (the validated
:class:`~disrnn.data.bin_config.BinConfig`); ``binning.py`` is the step itself,
:func:`~disrnn.data.binning.bin_session`: read the NWB session, pick trials and units,
call this module, and assemble the dataset.
"""

from __future__ import annotations

import numpy as np

from disrnn.data.session import Series

_TOL = 1e-7  # seconds: slack when comparing a window with the recording's extent


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
