"""Units that are one neuron recorded twice, found from their binned counts.

Spike sorting can split one neuron into two units, and a neuron near two channels can be
picked up on both. Such a pair shares its very spikes: their counts correlate in the same
bin far more than one bin apart. Two different neurons that share slow rate changes
correlate at 0 and +-1 bins alike. So a pair (u, v) counts as one neuron when

    excess_uv = r_0(u, v) - max(r_{+1}(u, v), r_{-1}(u, v)) >= SYNC_EXCESS,

r_l the Pearson correlation over all trials' window bins of u's count at t and v's at t + l
(pairs of bins within one trial). For co-smoothing such a pair matters most: with one unit
held in and the other held out, the held-out unit's spikes can be read off the same bin
of its twin, which a model with a sharp kernel exploits and the score then credits to it.
Binning keeps the unit with more spikes of each pair (``BinConfig.duplicates``).
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["SYNC_EXCESS", "drop_twins", "duplicate_pairs", "units_to_drop"]

log = logging.getLogger("disrnn.data.binning")

#: same-bin correlation above the neighbouring bins' that makes two units one neuron.
#: Twin units give excesses near the fraction of spikes they share; different neurons'
#: counts in 10-50 ms bins correlate weakly, and mostly through slow shared modulation,
#: which the neighbouring bins share too. Measured at 20 ms: the one twin pair of the ALM
#: file (000006) 0.836, every other pair of its 66 units below 0.1; no pair of the MTL
#: file (000207) nor of the simulated presets reaches 0.1.
SYNC_EXCESS = 0.3
CHUNK_VALUES = 2_000_000  # counts converted to float64 at a time


def _corr(sa, sb, saa, sbb, sab, n) -> np.ndarray:
    """Pearson r[u, v] of a_u and b_v from their sums over n samples: sa, sb (unit,),
    saa, sbb (unit,) sums of squares, sab (unit, unit) sum of products; NaN where a unit
    never varies."""
    cov = sab / n - np.outer(sa, sb) / n**2
    va, vb = saa / n - (sa / n) ** 2, sbb / n - (sb / n) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return cov / np.sqrt(np.outer(np.where(va > 0, va, np.nan), np.where(vb > 0, vb, np.nan)))


def duplicate_pairs(counts, excess: float = SYNC_EXCESS) -> list[tuple[int, int, float, float]]:
    """Pairs of units whose same-bin correlation exceeds their +-1-bin one by ``excess``.

    Args:
        counts: (trial, time, unit) spike counts of the window bins (unobserved bins 0).
        excess: the threshold on r_0 - max(r_{+1}, r_{-1}) (module docstring).
    Returns:
        [(u, v, r_0, r_adj)] with u < v unit indices and r_adj = max(r_{+1}, r_{-1}),
        sorted by decreasing excess; units that never vary pair with none.
    """
    x = np.asarray(counts)
    if x.ndim != 3:
        raise ValueError(f"counts must be (trial, time, unit), got shape {x.shape}")
    n_trial, n_time, n_unit = x.shape
    if n_time < 2 or n_unit < 2:
        return []
    # sums over chunks of trials in float64: no float copy of a large session
    s0 = np.zeros(n_unit)
    q0 = np.zeros((n_unit, n_unit))
    sa, sb, saa, sbb = (np.zeros(n_unit) for _ in range(4))
    q1 = np.zeros((n_unit, n_unit))
    step = max(1, CHUNK_VALUES // max(n_time * n_unit, 1))
    for k in range(0, n_trial, step):
        c = x[k : k + step].astype(np.float64)
        flat = c.reshape(-1, n_unit)
        s0 += flat.sum(0)
        q0 += flat.T @ flat
        a, b = c[:, :-1].reshape(-1, n_unit), c[:, 1:].reshape(-1, n_unit)
        sa, sb = sa + a.sum(0), sb + b.sum(0)
        saa, sbb = saa + (a * a).sum(0), sbb + (b * b).sum(0)
        q1 += a.T @ b
    d0 = np.diag(q0)
    r0 = _corr(s0, s0, d0, d0, q0, n_trial * n_time)
    r1 = _corr(sa, sb, saa, sbb, q1, n_trial * (n_time - 1))  # r1[u, v]: u at t, v at t + 1
    adj = np.maximum(r1, r1.T)
    u, v = np.nonzero(np.triu(np.nan_to_num(r0 - adj, nan=-np.inf) >= excess, k=1))
    pairs = [(int(i), int(j), float(r0[i, j]), float(adj[i, j])) for i, j in zip(u, v, strict=True)]
    return sorted(pairs, key=lambda p: p[3] - p[2])


def units_to_drop(counts, excess: float = SYNC_EXCESS) -> tuple[np.ndarray, list[list]]:
    """Which units to drop so that no twin pair is left: of each pair the unit with fewer
    spikes (the later index on a tie), pairs taken by decreasing excess and skipped once
    either unit is dropped.

    Args:
        counts: (trial, time, unit) spike counts; excess: as :func:`duplicate_pairs`.
    Returns:
        (drop (unit,) bool, [[dropped, kept, r_0, r_adj], ...] of the pairs acted on, unit
        indices).
    """
    x = np.asarray(counts)
    total = x.sum(axis=(0, 1))
    drop = np.zeros(x.shape[2], dtype=bool)
    acted = []
    for u, v, r0, radj in duplicate_pairs(x, excess):
        if drop[u] or drop[v]:
            continue
        lose, keep = (v, u) if total[u] >= total[v] else (u, v)
        drop[lose] = True
        acted.append([lose, keep, round(r0, 3), round(radj, 3)])
    return drop, acted


def drop_twins(counts, keep: np.ndarray, unit_ids: np.ndarray, source: str) -> dict:
    """Clear ``keep`` (in place) for the sparser unit of each twin pair among the kept
    units (:func:`units_to_drop`), with a logged warning naming each pair.

    Args:
        counts: (trial, time, unit) spike counts of every unit; keep: (unit,) bool, the
        units the other filters kept (changed in place); unit_ids: (unit,) ids;
        source: the file's name, for the warning.
    Returns:
        the dataset's ``filters`` attr entry: ``value``, ``removed``, ``removed_units``
        (ids), ``pairs`` ([dropped id, kept id, r_0, r_adj]).
    """
    kept = np.flatnonzero(keep)
    drop, pairs = units_to_drop(counts[:, :, kept])
    keep[kept[drop]] = False

    def uid(i):
        v = unit_ids[kept[i]]
        return v.item() if hasattr(v, "item") else v

    named = [[uid(a), uid(b), r0, ra] for a, b, r0, ra in pairs]
    if named:
        log.warning(
            "%s: dropped %d unit(s) that repeat another unit's spikes (one neuron recorded "
            "twice: same-bin count correlation far above the neighbouring bins'): %s; "
            "duplicates: keep keeps them",
            source,
            len(named),
            "; ".join(
                f"unit {a} (twin of unit {b}: r {r0} in the same bin, {ra} one bin apart)"
                for a, b, r0, ra in named
            ),  # fmt: skip
        )
    return {
        "value": "drop",
        "removed": len(named),
        "removed_units": [p[0] for p in named],
        "pairs": named,
    }
