"""Seeded train/val/test splits over trials and held-out units for co-smoothing.

Randomness is injected: every function takes a ``np.random.Generator``; :func:`generators`
derives independent ones for the trial split and the held-out draw from one seed, so
changing the split fractions does not change which units are held out.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def generators(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent generators (trial split, held-out units) derived from ``seed``."""
    split_seq, heldout_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(split_seq), np.random.default_rng(heldout_seq)


def _counts(n: int, fractions: tuple[float, float, float]) -> np.ndarray:
    """Integer counts summing to ``n`` in proportion to ``fractions`` (largest remainder)."""
    exact = np.asarray(fractions, dtype=np.float64) * n
    counts = np.floor(exact).astype(np.int64)
    remainder = exact - counts
    # ties broken in train, val, test order (stable sort on the negated remainder)
    order = np.argsort(-remainder, kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def split_trials(
    n_trials: int,
    fractions: tuple[float, float, float],
    rng: np.random.Generator,
    strata: np.ndarray | None = None,
) -> np.ndarray:
    """Assign each trial to "train", "val" or "test".

    Args:
        n_trials: number of trials.
        fractions: (train, val, test), non-negative, summing to 1.
        rng: the generator that shuffles the trials.
        strata: (trial,) condition labels; when given, each condition is split in
            proportion on its own (largest-remainder rounding per condition).

    Returns:
        (trial,) str array of split names.

    A split that rounding leaves without trials gets a logged warning (the message of
    :func:`check_split_sizes`): such a dataset can be looked at, but fitting needs train
    trials and evaluation test trials (both refuse without them).

    Raises:
        ValueError: fractions negative or not summing to 1; strata of the wrong length.
    """
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(
            f"split fractions must be three non-negative numbers (train, val, test) summing "
            f"to 1, got {fractions}"
        )
    out = _assign(n_trials, fractions, rng, strata)
    empty = [name for name in SPLITS if not (out == name).any()]
    if empty:
        log.warning("%s", _empty_split_message(n_trials, fractions, empty))
    return out


def _assign(n_trials, fractions, rng, strata) -> np.ndarray:
    """(trial,) split names in proportion to ``fractions`` (per stratum when given)."""
    out = np.empty(n_trials, dtype="<U5")
    if strata is None:
        groups = [np.arange(n_trials)]
    else:
        strata = np.asarray(strata)
        if strata.shape != (n_trials,):
            raise ValueError(
                f"strata must have one label per trial ({n_trials}), got {strata.shape}"
            )
        # by the inverse index, so trials with a NaN label form one group of their own
        inverse = np.unique(strata, return_inverse=True)[1].reshape(-1)
        groups = [np.flatnonzero(inverse == i) for i in range(inverse.max(initial=-1) + 1)]
    for idx in groups:
        shuffled = rng.permutation(idx)
        counts = _counts(len(idx), fractions)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        for name, lo, hi in zip(SPLITS, bounds[:-1], bounds[1:], strict=True):
            out[shuffled[lo:hi]] = name
    return out


def trial_column(columns: dict, name: str, role: str, source: str) -> np.ndarray:
    """``columns[name]`` as an array (trial,).

    Raises:
        ValueError: no such trial column; the message names ``role`` (what wanted it),
            ``source`` (the file) and the trial columns there are.
    """
    if name not in columns:
        avail = ", ".join(columns) or "none"
        raise ValueError(f"{role}: {source} has no trial column {name!r}; available: {avail}")
    return np.asarray(columns[name])


def marked_trials(columns: dict, column: str, values: tuple[str, ...], source: str) -> np.ndarray:
    """(trial,) bool: the trials whose ``column`` value is one of ``values`` (as numbers in
    a numeric column, else as text).

    Raises:
        ValueError: ``column`` is not a trial column (the message lists them), or it
            marks no trial or every trial (the message lists the column's values).
    """
    col = trial_column(columns, column, "test_trials", source)
    if col.dtype.kind in "iuf":  # a numeric column: 1 and 1.0 are one value
        try:
            marked = np.isin(col.astype(float), [float(v) for v in values])
        except ValueError:  # a value that is not a number marks no trial
            marked = np.zeros(col.shape, bool)
    else:
        marked = np.isin(col.astype(str), np.asarray(values, dtype=str))
    if marked.all() or not marked.any():
        found = ", ".join(repr(str(v)) for v in np.unique(col.astype(str))[:20])
        what = "every trial" if marked.any() else "no trial"
        raise ValueError(
            f"test_trials: {column} in {list(values)} marks {what} of the {col.size} kept "
            f"trials of {source} (its values: {found}; compared as text, or as numbers in a "
            "numeric column); the test trials must be some of the trials, not none or all, "
            "so that train and val trials remain"
        )
    return marked


def split_around_test(
    marked: np.ndarray,
    fractions: tuple[float, float, float],
    rng: np.random.Generator,
    strata: np.ndarray | None = None,
) -> np.ndarray:
    """The ``marked`` trials are "test"; the others are split into "train" and "val" in
    the ratio fractions[0] : fractions[1] (seeded by ``rng``; per stratum when ``strata``
    is given), so a file's own held-out trials stay the test trials.

    Returns:
        (trial,) str array of split names.
    """
    marked = np.asarray(marked, dtype=bool)
    train, val = float(fractions[0]), float(fractions[1])
    rest = np.flatnonzero(~marked)
    sub_strata = None if strata is None else np.asarray(strata)[rest]
    out = np.full(marked.size, "test", dtype="<U5")
    out[rest] = _assign(rest.size, (train / (train + val), val / (train + val), 0.0), rng,
                        sub_strata)  # fmt: skip
    empty = [name for name in ("train", "val") if not (out == name).any()]
    if empty:
        log.warning(
            "%d trials besides the test trials leave no %s trials; fitting needs train "
            "trials and early stopping val trials",
            rest.size,
            " and no ".join(empty),
        )
    return out


def check_split_sizes(n_trials: int, fractions: tuple[float, float, float]) -> None:
    """Raise ValueError when ``fractions`` of ``n_trials`` trials leave a split empty
    (largest-remainder rounding, as :func:`split_trials` without strata)."""
    counts = _counts(int(n_trials), tuple(float(f) for f in fractions))
    empty = [name for name, c in zip(SPLITS, counts, strict=True) if not c]
    if empty:
        raise ValueError(_empty_split_message(n_trials, fractions, empty))


def _empty_split_message(n_trials: int, fractions, empty: list[str]) -> str:
    return (
        f"split {tuple(float(f) for f in fractions)} of {n_trials} trials leaves no "
        f"{' and no '.join(empty)} trials; every split needs at least one (train: "
        "fitting, val: early stopping, test: the metrics); use more trials or larger "
        "fractions for the empty splits"
    )


def window_overlaps(starts: np.ndarray, length: float, tol: float = 1e-7):
    """Pairs of trial windows [start, start + length) that overlap.

    Args:
        starts: (trial,) window starts in seconds (alignment + window start).
        length: the window's length in seconds (the same for every trial).
        tol: seconds of overlap ignored (windows that only touch do not overlap).

    Returns:
        (i, j, seconds): trial indices of each overlapping pair (i's window starts first)
        and the length of their overlap.
    """
    starts = np.asarray(starts, dtype=np.float64)
    order = np.argsort(starts, kind="stable")
    s = starts[order]
    stop = np.searchsorted(s, s + length - tol, side="left")  # first window clear of k's
    pairs = [(k, m) for k in range(len(s)) for m in range(k + 1, stop[k])]
    first, second = np.array(pairs, dtype=np.int64).reshape(-1, 2).T  # positions in s
    return order[first], order[second], length - (s[second] - s[first])


def check_overlaps(
    ids: np.ndarray,
    starts: np.ndarray,
    length: float,
    split: np.ndarray,
    allow: bool,
    source: str,
) -> None:
    """Warn about overlapping trial windows; refuse overlaps across splits unless ``allow``.

    Spikes in an overlap are counted in both trials; when those trials lie in different
    splits the test (or validation) trials share data with the training ones.

    Args:
        ids: (trial,) trial ids; starts: (trial,) window starts (s); length: window
        length (s); split: (trial,) split names; allow: accept overlaps across splits
        (:attr:`~disrnn.data.bin_config.BinConfig.allow_overlap`); source: the file's name.

    Raises:
        ValueError: overlapping windows in different splits and ``allow`` False.
    """
    i, j, seconds = window_overlaps(starts, length)
    if not len(i):
        return
    cross = split[i] != split[j]
    what = (
        f"{source}: {len(i)} pairs of trial windows overlap, by up to {seconds.max():.6g} s "
        f"of the {length:.6g} s window (e.g. trials {ids[i[0]]} and {ids[j[0]]}); spikes in "
        "an overlap are counted in both trials"
    )
    if cross.any() and not allow:
        k = int(np.flatnonzero(cross)[0])
        raise ValueError(
            f"{what}, and {int(cross.sum())} of these pairs lie in different splits (e.g. "
            f"trial {ids[i[k]]} in {split[i[k]]}, trial {ids[j[k]]} in {split[j[k]]}), so "
            "the evaluation trials would share data with the training trials; shorten the "
            "window, or set allow_overlap (disrnn bin --allow-overlap) to accept it"
        )
    log.warning("%s (%d pairs across splits)", what, int(cross.sum()))


def heldout_units(
    n_units: int,
    fraction: float,
    rng: np.random.Generator,
    column: np.ndarray | None = None,
) -> np.ndarray:
    """Which units are held out for co-smoothing.

    Args:
        n_units: number of units.
        fraction: in [0, 1); used only without ``column``: ``round(fraction * n_units)``
            units drawn at random without replacement.
        rng: the generator of the random draw.
        column: (unit,) the NWB units table's ``heldout`` column; when given it decides.

    Returns:
        (unit,) bool.

    Raises:
        ValueError: fraction outside [0, 1); column of the wrong length.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"heldout_fraction must be in [0, 1), got {fraction}")
    if column is not None:
        column = np.asarray(column)
        if column.shape != (n_units,):
            raise ValueError(f"heldout column must have one value per unit ({n_units})")
        if column.dtype.kind == "U":
            return np.isin(np.char.lower(column), ["true", "1", "yes"])
        return column.astype(bool)
    out = np.zeros(n_units, dtype=bool)
    n = int(round(fraction * n_units))
    if n:
        out[rng.choice(n_units, size=n, replace=False)] = True
    return out


def choose_heldout(
    n_units: int,
    fraction: float,
    rng: np.random.Generator,
    column: np.ndarray | None,
    mode: str = "auto",
    source: str = "the file",
) -> tuple[np.ndarray, str]:
    """Held-out units by ``mode`` (:attr:`disrnn.data.bin_config.BinConfig.heldout`).

    Args:
        n_units: number of (kept) units.
        fraction: the seeded fraction drawn when the column does not decide.
        rng: the generator of that draw.
        column: (unit,) the file's ``heldout`` unit column, or None when it has none.
        mode: ``"auto"`` the column when it marks at least one unit, else the seeded
            fraction (a logged warning names ``source``); ``"file"`` the column;
            ``"random"`` the seeded fraction, the column ignored.
        source: the file's name, for messages.

    Returns:
        ((unit,) bool held-out mask, how: ``"nwb column"`` or ``"random"``).

    Raises:
        ValueError: an unknown mode; mode ``"file"`` without a column; every unit held
        out (the encoder needs held-in units).
    """
    heldout, how = _choose(n_units, fraction, rng, column, mode, source)
    if how == "random":
        check_heldin(n_units, fraction, source)
    elif n_units and heldout.all():
        raise ValueError(
            f"{source}: the 'heldout' unit column marks every one of the {n_units} kept "
            "units; the encoder needs held-in units; use heldout 'random' with a "
            "heldout_fraction below 1"
        )
    return heldout, how


def check_heldin(n_units: int, fraction: float, source: str) -> None:
    """Raise ValueError when ``round(fraction * n_units)`` held-out units leave none held in."""
    if n_units and int(round(fraction * n_units)) >= n_units:
        raise ValueError(
            f"{source}: heldout_fraction {fraction:g} of {n_units} units holds out all "
            f"{n_units} (round({fraction:g} x {n_units})); the encoder needs held-in units; "
            f"use a heldout_fraction below {(n_units - 0.5) / n_units:.3g}"
        )


def _choose(n_units, fraction, rng, column, mode, source) -> tuple[np.ndarray, str]:
    """:func:`choose_heldout` before its held-in check."""
    if mode not in ("auto", "file", "random"):
        raise ValueError(f"heldout mode must be auto, file or random, got {mode!r}")
    if mode == "file" and column is None:
        raise ValueError(
            f"{source} has no 'heldout' unit column to take the held-out units from; use "
            "heldout 'random' (or 'auto') with a heldout_fraction"
        )
    if mode != "random" and column is not None:
        marked = heldout_units(n_units, fraction, rng, column)
        if marked.any() or mode == "file":
            if not marked.any():
                log.warning(
                    "%s: the 'heldout' column marks none of the %d units; no unit is held "
                    "out (heldout 'file'), so co-smoothing scores are not available",
                    source,
                    n_units,
                )
            return marked, "nwb column"
        log.warning(
            "%s: the 'heldout' column marks none of the %d units; holding out a seeded "
            "fraction %g instead (%d units)%s",
            source,
            n_units,
            fraction,
            int(round(fraction * n_units)),
            "; set heldout_fraction > 0 to hold any out" if fraction == 0 else "",
        )
    return heldout_units(n_units, fraction, rng), "random"
