"""The validated configuration of :func:`disrnn.data.binning.bin_session`: what to bin.

Only the options and their value ranges live here (the workflow builds a BinConfig per
session to check its config before any job); ``binning.py`` does the binning, ``bins.py``
the arithmetic of counting and averaging onto bins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: How held-out units are chosen (:attr:`BinConfig.heldout`).
HELDOUT_MODES = ("auto", "file", "random")
#: Per-unit rescaling of spike counts (:attr:`BinConfig.rescale`); None: counts as they are.
RESCALE_MODES = ("unit-max",)


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
        behavior: TimeSeries names averaged onto the bins.
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
        split: (train, val, test) fractions over trials, non-negative, summing to 1.
        stratify: trial column whose values are split in proportion each (``condition``
            is the chosen ``condition`` column).
        seed: seed of the split and the held-out draw.

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
    behavior: tuple[str, ...] = ()
    heldout_fraction: float = 0.0
    heldout: str = "auto"
    pre_window: float = 0.5
    rescale: str | None = None
    condition: str | None = None
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)
    stratify: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        def setf(name, value):
            object.__setattr__(self, name, value)

        bw = _number("bin_width", self.bin_width)
        if not bw > 0:
            raise ValueError(f"bin_width must be a positive number of seconds, got {bw}")
        setf("bin_width", bw)
        if self.window is not None:
            if len(self.window) != 2:
                raise ValueError(f"window must be (start, end) in seconds, got {self.window!r}")
            start, end = (_number("window start", v) for v in self.window)
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
            setf("window", (start, end))
        if self.window_length is not None:
            length = _number("window_length", self.window_length)
            if not length > 0:
                raise ValueError(f"window_length must be positive seconds, got {length}")
            if length < bw * (1 - 1e-9):
                raise ValueError(
                    f"bin_width {bw} s is longer than window_length {length} s; choose a "
                    "bin width at most the window length"
                )
            if self.trials is not None or self.align is not None or self.window is not None:
                raise ValueError(
                    "window_length cuts the recording into windows without trials; do not "
                    "combine it with trials, align or window"
                )
            setf("window_length", length)
        for name in ("min_rate", "max_rate", "min_spikes"):
            value = getattr(self, name)
            if value is not None and not _number(name, value) >= 0:
                raise ValueError(f"{name} must be non-negative, got {value}")
        if self.min_rate is not None and self.max_rate is not None:
            if self.min_rate > self.max_rate:
                raise ValueError(
                    f"min_rate {self.min_rate} Hz is above max_rate {self.max_rate} Hz"
                )
        if isinstance(self.behavior, str):
            setf("behavior", (self.behavior,))
        setf("behavior", tuple(self.behavior))
        if len(set(self.behavior)) != len(self.behavior):
            raise ValueError(f"behavior names repeat: {self.behavior}")
        hf = _number("heldout_fraction", self.heldout_fraction)
        if not 0.0 <= hf < 1.0:
            raise ValueError(f"heldout_fraction must be in [0, 1), got {hf}")
        setf("heldout_fraction", hf)
        if self.heldout not in HELDOUT_MODES:
            raise ValueError(
                f"heldout must be one of {', '.join(HELDOUT_MODES)}, got {self.heldout!r} "
                "(auto: the file's heldout column when it marks a unit, else heldout_fraction)"
            )
        setf("pre_window", _pre_window(self.pre_window))
        if self.rescale is not None:
            if self.rescale not in RESCALE_MODES:
                raise ValueError(
                    f"rescale must be None or one of {', '.join(RESCALE_MODES)}, got "
                    f"{self.rescale!r}"
                )
            if self.activity is not None:
                raise ValueError(
                    f"rescale={self.rescale!r} divides spike counts per unit; it does not "
                    f"apply to the continuous TimeSeries {self.activity!r} (leave rescale "
                    "None)"
                )
        if self.condition is not None and not (isinstance(self.condition, str) and self.condition):
            raise TypeError(
                f"condition must be the name of a trial column or None, got {self.condition!r}"
            )
        fractions = tuple(_number("split fraction", v) for v in self.split)
        if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
            raise ValueError(
                "split must be three non-negative fractions (train, val, test) summing to "
                f"1, got {tuple(self.split)}"
            )
        setf("split", fractions)
        if not isinstance(self.seed, int | np.integer) or isinstance(self.seed, bool):
            raise TypeError(f"seed must be an integer, got {self.seed!r}")

    @property
    def n_pre_bins(self) -> int:
        """P: whole bins of history before each window, floor(pre_window / bin_width)."""
        return int(math.floor(self.pre_window / self.bin_width + 1e-9))


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
