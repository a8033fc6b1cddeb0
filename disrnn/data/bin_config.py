"""The validated configuration of :func:`disrnn.data.binning.bin_session`: what to bin.

Only the options and their value ranges live here (the workflow builds a BinConfig per
session to check its config before any job); ``binning.py`` does the binning, ``bins.py``
the arithmetic of counting and averaging onto bins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from disrnn.data.splits import SPLITS

#: How held-out units are chosen (:attr:`BinConfig.heldout`).
HELDOUT_MODES = ("auto", "file", "random")
#: Per-unit rescaling of spike counts (:attr:`BinConfig.rescale`); None: counts as they are.
RESCALE_MODES = ("unit-max",)
#: What binning does with units that are one neuron recorded twice (:attr:`BinConfig.duplicates`)
DUPLICATE_MODES = ("drop", "keep")


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
        duplicates: ``"drop"``: of each pair of units that are one neuron recorded twice
            (:mod:`disrnn.data.duplicates`: their counts correlate in the same bin far
            more than one bin apart), keep the one with more spikes, after the rate
            filters; ``"keep"``: keep every unit. Spike counts only.
        behavior: TimeSeries names averaged onto the bins.
        behavior_lag: seconds, finite: bin t's behavior is the mean over the bin's edges
            shifted by this lag (t's spikes predict the behavior ``behavior_lag`` later;
            NLB decodes MC_Maze's hand velocity 0.1 s after the spikes); 0: the same bins.
        heldout_fraction: in [0, 1); fraction of units held out (a seeded draw) when the
            held-out units are not taken from the file (see ``heldout``).
        heldout: where the held-out units come from: ``"auto"`` the file's ``heldout``
            unit column when it marks at least one kept unit, else the seeded
            ``heldout_fraction`` (with a logged warning naming the file); ``"file"`` the
            column (an error when the file has none); ``"random"`` ignore the column and
            draw ``heldout_fraction``.
        pre_window: seconds of history bins kept before each trial's window, >= 0 (0:
            none); rounded down to whole bins, P = floor(pre_window / bin_width).
        rescale: None, or ``"unit-max"``: spike counts divided per unit by the unit's
            largest count over the window bins of the train trials (float32, kind
            ``"continuous"``; the divisor is the unit coord ``scale``). Spikes only.
        condition: trial column whose values label the trials' conditions (for PSTHs,
            stratified splits and condition decoding): copied into the trial coord
            ``condition``, the column itself kept under its own name (a file's own
            ``condition`` column, when another is chosen, is kept as
            ``trial_condition``); None: a column literally named ``condition``, if any.
        split: (train, val, test) fractions over trials, each > 0, summing to 1 (every
            split needs trials: training, early stopping, the test metrics); the test
            fraction may be 0 with ``test_trials``.
        stratify: trial column whose values are split in proportion each (``condition``
            is the chosen ``condition`` column).
        test_trials: None, or (column, values): the trials whose trial ``column`` holds
            one of ``values`` (compared as numbers in a numeric column, else as text;
            ``condition`` is the chosen ``condition`` column) are the test trials, e.g. ``("split",
            ("val",))`` for a Neural Latents Benchmark file's own validation trials; the
            other trials are split into train and val in the ratio split[0] : split[1]
            (split[2] is then unused and may be 0). A mapping ``{"column": ..., "values": [...]}`` is
            accepted too.
        seed: seed of the split and the held-out draw.
        allow_overlap: accept trial windows that overlap across the train/val/test split
            (spikes in an overlap are counted in both trials, so the test trials would
            share data with the training ones); overlaps within one split only warn.

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
    duplicates: str = "drop"
    behavior: tuple[str, ...] = ()
    behavior_lag: float = 0.0
    heldout_fraction: float = 0.0
    heldout: str = "auto"
    pre_window: float = 0.5
    rescale: str | None = None
    condition: str | None = None
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)
    stratify: str | None = None
    test_trials: tuple[str, tuple[str, ...]] | None = None
    seed: int = 0
    allow_overlap: bool = False

    def __post_init__(self) -> None:
        def setf(name, value):
            object.__setattr__(self, name, value)

        bw = _positive("bin_width", self.bin_width, "a positive number of seconds")
        setf("bin_width", bw)
        if self.window is not None:
            setf("window", _window(self.window, bw))
        if self.window_length is not None:
            setf("window_length", _window_length(self, bw))
        _check_filters(self)
        setf("behavior", _behavior(self.behavior))
        setf("behavior_lag", _number("behavior_lag", self.behavior_lag))
        setf("heldout_fraction", _heldout(self.heldout_fraction, self.heldout))
        setf("pre_window", _pre_window(self.pre_window))
        _check_rescale(self.rescale, self.activity)
        if self.duplicates not in DUPLICATE_MODES:
            raise ValueError(
                f"duplicates must be one of {', '.join(DUPLICATE_MODES)}, got {self.duplicates!r}"
            )
        if self.condition is not None and not (isinstance(self.condition, str) and self.condition):
            raise TypeError(
                f"condition must be the name of a trial column or None, got {self.condition!r}"
            )
        setf("test_trials", _test_trials(self.test_trials))
        setf("split", _split(self.split, test_given=self.test_trials is not None))
        if not isinstance(self.seed, int | np.integer) or isinstance(self.seed, bool):
            raise TypeError(f"seed must be an integer, got {self.seed!r}")
        if not isinstance(self.allow_overlap, bool | np.bool_):
            raise TypeError(f"allow_overlap must be true or false, got {self.allow_overlap!r}")

    @property
    def n_pre_bins(self) -> int:
        """P: whole bins of history before each window, floor(pre_window / bin_width)."""
        return int(math.floor(self.pre_window / self.bin_width + 1e-9))


def _positive(name: str, value, what: str) -> float:
    out = _number(name, value)
    if not out > 0:
        raise ValueError(f"{name} must be {what}, got {out}")
    return out


def _window(window, bw: float) -> tuple[float, float]:
    if len(window) != 2:
        raise ValueError(f"window must be (start, end) in seconds, got {window!r}")
    start, end = (_number("window start", v) for v in window)
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
    return start, end


def _window_length(config: BinConfig, bw: float) -> float:
    length = _positive("window_length", config.window_length, "positive seconds")
    if length < bw * (1 - 1e-9):
        raise ValueError(
            f"bin_width {bw} s is longer than window_length {length} s; choose a "
            "bin width at most the window length"
        )
    if config.trials is not None or config.align is not None or config.window is not None:
        raise ValueError(
            "window_length cuts the recording into windows without trials; do not "
            "combine it with trials, align or window"
        )
    return length


def _check_filters(config: BinConfig) -> None:
    for name in ("min_rate", "max_rate", "min_spikes"):
        value = getattr(config, name)
        if value is not None and not _number(name, value) >= 0:
            raise ValueError(f"{name} must be non-negative, got {value}")
    if config.min_rate is not None and config.max_rate is not None:
        if config.min_rate > config.max_rate:
            raise ValueError(
                f"min_rate {config.min_rate} Hz is above max_rate {config.max_rate} Hz"
            )


def _behavior(names) -> tuple[str, ...]:
    names = (names,) if isinstance(names, str) else tuple(names)
    if len(set(names)) != len(names):
        raise ValueError(f"behavior names repeat: {names}")
    return names


def _heldout(fraction, mode) -> float:
    hf = _number("heldout_fraction", fraction)
    if not 0.0 <= hf < 1.0:
        raise ValueError(
            f"heldout_fraction must be in [0, 1), got {hf}; the encoder needs held-in units"
        )
    if mode not in HELDOUT_MODES:
        raise ValueError(
            f"heldout must be one of {', '.join(HELDOUT_MODES)}, got {mode!r} "
            "(auto: the file's heldout column when it marks a unit, else heldout_fraction)"
        )
    return hf


def _check_rescale(rescale, activity) -> None:
    if rescale is None:
        return
    if rescale not in RESCALE_MODES:
        raise ValueError(
            f"rescale must be None or one of {', '.join(RESCALE_MODES)}, got {rescale!r}"
        )
    if activity is not None:
        raise ValueError(
            f"rescale={rescale!r} divides spike counts per unit; it does not apply to the "
            f"continuous TimeSeries {activity!r} (leave rescale None)"
        )


def _split(split, test_given: bool = False) -> tuple[float, float, float]:
    """(train, val, test) fractions; the test fraction may be 0 when ``test_given`` (the
    test trials are marked by ``test_trials``)."""
    fractions = tuple(_number("split fraction", v) for v in split)
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(
            "split must be three non-negative fractions (train, val, test) summing to "
            f"1, got {tuple(split)}"
        )
    empty = [name for name, f in zip(SPLITS, fractions, strict=True) if f == 0]
    if test_given:
        empty = [name for name in empty if name != "test"]
    if empty:
        raise ValueError(
            f"split {fractions} leaves no {' and no '.join(empty)} trials; every split "
            "needs trials (train: fitting, val: early stopping, test: the metrics), "
            "e.g. (0.7, 0.15, 0.15)"
        )
    return fractions


def _test_trials(value) -> tuple[str, tuple[str, ...]] | None:
    """(column, values as text) from a (column, values) pair or a {column, values} mapping."""
    if value is None:
        return None
    example = "e.g. column 'split' with values ['val'] (an NLB file's validation trials)"
    if isinstance(value, Mapping):
        if set(value) != {"column", "values"}:
            raise ValueError(
                f"test_trials takes the keys column and values, got {sorted(value)}; {example}"
            )
        column, values = value["column"], value["values"]
    elif isinstance(value, tuple | list) and len(value) == 2:
        column, values = value
    else:
        raise TypeError(f"test_trials must be (column, values) or None, got {value!r}; {example}")
    if not (isinstance(column, str) and column):
        raise TypeError(f"test_trials column must be a trial column's name, got {column!r}")
    values = (values,) if isinstance(values, str | int | float | bool) else tuple(values)
    if not values:
        raise ValueError(
            f"test_trials needs at least one value of column {column!r} that marks the test "
            f"trials; {example}"
        )
    return column, tuple(str(v) for v in values)


def _pre_window(value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"pre_window must be a number of seconds, got {value!r}") from None
    if not (math.isfinite(out) and out >= 0):
        raise ValueError(
            f"pre_window must be a finite, non-negative number of seconds of history before "
            f"each window, got {value!r}; e.g. 0.5, or 0 to keep no history bins"
        )
    return out


def _number(name: str, value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out
