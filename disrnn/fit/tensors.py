"""The dataset at the model boundary: checked, described, and turned into tensors.

The data rules of a fit live here, once, and evaluation calls them too:
``dataset_kind`` (spike counts or continuous), ``check_split`` (every trial labelled
train, val or test), ``check_values`` (what the likelihood and the kind allow),
``silent_units`` (units without a training spike), ``valid_bins`` (which bins are
scored), ``activity_sha256`` (the fingerprint a fit records of its data). ``load_input``
checks a Dataset (or loads one from a path) and fingerprints it; ``trial_arrays`` builds per-trial
tanh frames and targets (``lagged_stack`` their history stacks); ``prepare`` flattens the
valid bins of one split into a :class:`FitData`, whose history is a :class:`HistoryBins`.

torch is imported only by ``prepare`` (evaluation imports the rules without it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from disrnn.data.io import DIMS, file_sha256
from disrnn.data.splits import SPLITS

if TYPE_CHECKING:
    import torch

__all__ = [
    "FitData",
    "HistoryBins",
    "activity_sha256",
    "bin_width",
    "check_split",
    "check_values",
    "first_bin",
    "history_frame",
    "dataset_kind",
    "lagged_stack",
    "load_input",
    "prepare",
    "silent_units",
    "trial_arrays",
    "valid_bins",
]


@dataclasses.dataclass
class FitData:
    """Bins of one split, flattened, on the device.

    h: (bin, unit) history features (fixed kernel) or a :class:`HistoryBins`, the (bin,
    L, unit) tanh of the L previous bins gathered when indexed (learned kernel);
    x: (bin, unit) float32 targets; u: (bin, unit) float32 known input of each target
    bin (the dataset's ``input``), or None.
    """

    h: torch.Tensor | HistoryBins
    x: torch.Tensor
    units: np.ndarray
    input_mask: torch.Tensor | None = None  # (unit,) bool, False for held-out units
    u: torch.Tensor | None = None

    @property
    def n_bins(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_units(self) -> int:
        return int(self.x.shape[1])

    def u_at(self, idx) -> torch.Tensor | None:
        """The known input of bins ``idx`` (an index or slice), None without input."""
        return None if self.u is None else self.u[idx]

    def to(self, device) -> FitData:
        u = None if self.u is None else self.u.to(device)
        return FitData(self.h.to(device), self.x.to(device), self.units, self.input_mask, u)


def load_input(dataset) -> tuple[xr.Dataset, dict]:
    """(Dataset, provenance dict) from a Dataset or a path.

    Raises:
        FileNotFoundError: missing path; ValueError: no ``activity``, wrong dims, NaN or
        inf activity, a bad ``split`` (:func:`check_split`), or an ``input`` that is not
        a finite (trial, time, unit) array of activity's shape.
    """
    source: dict = {"path": None, "sha256": None}
    if isinstance(dataset, str | os.PathLike):
        from disrnn.data.io import load_dataset

        path = Path(dataset)
        ds = load_dataset(path)
        source = {"path": str(path), "sha256": file_sha256(path)}
    elif isinstance(dataset, xr.Dataset):
        ds = dataset
        source["sha256"] = ds.attrs.get("sha256") or None
    else:
        raise TypeError(f"dataset must be an xarray.Dataset or a path, got {type(dataset)}")
    if "activity" not in ds:
        raise ValueError("the dataset has no 'activity' variable; build it with `disrnn bin`")
    if tuple(ds["activity"].dims) != DIMS:
        raise ValueError(f"activity must have dims {DIMS}, got {ds['activity'].dims}")
    if not np.all(np.isfinite(ds["activity"].values)):
        raise ValueError("activity holds NaN or inf values; mask those bins instead")
    check_split(ds)
    source["activity_sha256"] = activity_sha256(ds)
    if "input" in ds:
        u = ds["input"]
        if tuple(u.dims) != DIMS or u.shape != ds["activity"].shape:
            raise ValueError(
                f"input must have dims {DIMS} and activity's shape "
                f"{ds['activity'].shape}, got {u.dims} {u.shape}"
            )
        u = np.ascontiguousarray(u.values.astype(np.float32))
        if not np.all(np.isfinite(u)):
            raise ValueError("input holds NaN or inf values; it must be finite everywhere")
        source["input_sha256"] = hashlib.sha256(u.tobytes()).hexdigest()
    return ds, source


def check_split(ds: xr.Dataset) -> np.ndarray:
    """(trial,) str: the ``split`` labels, each one of train, val, test.

    A fit trains on the train trials, stops early on val and is scored on test; a trial
    with another label (or a dataset without labels) would silently be left out or
    counted everywhere.

    Raises:
        ValueError: no ``split`` coordinate on ``trial``, or labels outside train/val/test
        (the message names them and how many trials carry each).
    """
    if "split" not in ds.coords or ds["split"].dims != ("trial",):
        raise ValueError(
            "the dataset has no 'split' coordinate on 'trial' saying which trials are "
            "train, val and test; bin it with `disrnn bin` (which draws the split) or "
            "assign one: ds.assign_coords(split=('trial', labels))"
        )
    labels = np.asarray(ds["split"].values).astype(str)
    bad, counts = np.unique(labels[~np.isin(labels, SPLITS)], return_counts=True)
    if bad.size:
        named = ", ".join(f"{str(b)!r} ({c} trials)" for b, c in zip(bad, counts, strict=True))
        raise ValueError(
            f"the dataset's split labels {named} are not one of {', '.join(SPLITS)}; "
            "relabel those trials (labels are lower case)"
        )
    return labels


def check_values(ds: xr.Dataset, likelihood: str | None) -> None:
    """Raise unless ``activity`` suits the likelihood and the dataset's kind.

    Rules: the Poisson likelihood needs activity >= 0 (of any kind: a mean count cannot
    be negative); ``kind="spike_counts"`` means whole numbers >= 0 (with any likelihood).

    Raises:
        ValueError: naming how many values break the rule, the first one and the fix.
    """
    x = ds["activity"].transpose(*DIMS).values
    counts_fix = "rebin it with `disrnn bin`, or mark it kind='continuous'"
    rules = []
    if likelihood == "poisson":
        fix = "fit with likelihood 'gaussian', or fix the data"
        rules.append((x < 0, "negative", "the Poisson likelihood needs activity >= 0", fix))
    if dataset_kind(ds) == "spike_counts":
        rules.append((x < 0, "negative", "spike counts are >= 0", counts_fix))
        rules.append((x != np.round(x), "fractional", "spike counts are whole", counts_fix))
    for bad, what, rule, fix in rules:
        if bad.any():
            t, b, u = (int(v[0]) for v in np.nonzero(bad))
            raise ValueError(
                f"activity holds {int(bad.sum())} {what} values (the first {x[t, b, u]:g} "
                f"at trial {ds['trial'].values[t]}, bin {b}, unit {ds['unit'].values[u]}) "
                f"but {rule} (dataset kind {dataset_kind(ds)!r}); {fix}"
            )


def silent_units(data: FitData) -> np.ndarray:
    """The ids of the units whose every target bin in ``data`` is 0 (no spike)."""
    return np.asarray(data.units)[(data.x == 0).all(dim=0).cpu().numpy()]


def activity_sha256(ds: xr.Dataset) -> str:
    """sha256 of the bytes of ``activity`` as stored (C order): the data a fit was fitted to."""
    act = np.ascontiguousarray(ds["activity"].values)
    return hashlib.sha256(act.tobytes()).hexdigest()


def history_frame(ds: xr.Dataset, history: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The activity with the history bins binned before each window prepended.

    A dataset from ``disrnn bin`` may carry ``pre_activity`` (trial, pre_time, unit), the
    P bins just before each trial's window, and ``pre_mask`` (trial, pre_time); the last
    p = min(P, L) of them are put in front of ``activity`` so that window bin t has its
    L history bins even for t < L. Without them p = 0 (the first L bins are history only).

    Returns:
        (act, observed, p): act (trial, p + time, unit) float32; observed (trial, p + time)
        bool (``pre_mask`` / ``mask``, True without them); p, the history bins prepended.
    """
    act = ds["activity"].transpose(*DIMS).values.astype(np.float32)
    n_trial, n_time = act.shape[:2]
    observed = np.ones((n_trial, n_time), dtype=bool)
    if "mask" in ds:
        observed = ds["mask"].transpose("trial", "time").values.astype(bool)
    n_pre = ds.sizes.get("pre_time", 0) if "pre_activity" in ds else 0
    p = min(int(n_pre), int(history))
    if p == 0:
        return act, observed, 0
    pre = ds["pre_activity"].transpose("trial", "pre_time", "unit").values[:, n_pre - p :]
    pre_obs = np.ones((n_trial, p), dtype=bool)
    if "pre_mask" in ds:
        pre_obs = ds["pre_mask"].transpose("trial", "pre_time").values[:, n_pre - p :]
    act = np.concatenate([pre.astype(np.float32), act], axis=1)
    observed = np.concatenate([pre_obs.astype(bool), observed], axis=1)
    return act, observed, p


def first_bin(ds: xr.Dataset, history: int) -> int:
    """s0 = L - p, the first window bin with a full history (0 with enough history bins)."""
    return int(history) - history_frame_size(ds, history)


def history_frame_size(ds: xr.Dataset, history: int) -> int:
    """p = min(P, L): the history bins before the window a fit with history L uses."""
    n_pre = ds.sizes.get("pre_time", 0) if "pre_activity" in ds else 0
    return min(int(n_pre), int(history))


def valid_bins(ds: xr.Dataset, history: int) -> np.ndarray:
    """(trial, time) bool: the bins a fit is trained on and scored on.

    A window bin t is valid when its L history bins exist (t >= s0, :func:`first_bin`)
    and bins t - L .. t are all observed (``mask`` and ``pre_mask``, when present), so a
    prediction made from an unobserved (zero-filled) history never counts.
    """
    _, observed, p = history_frame(ds, history)
    n_trial, n_frame = observed.shape
    n_time = n_frame - p
    s0 = history - p
    ok = np.zeros((n_trial, n_time), dtype=bool)
    ok[:, s0:] = True
    for lag in range(history + 1):
        # window bin t is frame bin t + p; its lag-l history is frame bin t + p - l
        ok[:, s0:] &= observed[:, history - lag : n_frame - lag]
    return ok


def bin_width(ds: xr.Dataset) -> float | None:
    """Seconds per bin: the ``bin_width`` attribute, else the spacing of ``time``, else None."""
    bw = ds.attrs.get("bin_width")
    if bw is not None:
        return float(bw)
    t = np.asarray(ds["time"].values, dtype=float) if "time" in ds.coords else np.array([])
    return float(np.median(np.diff(t))) if t.size > 1 else None


def dataset_kind(ds: xr.Dataset) -> str:
    """``spike_counts`` or ``continuous``: activity.attrs/attrs ``kind``, else by dtype.

    Raises:
        ValueError: a ``kind`` attribute with another value.
    """
    kind = ds["activity"].attrs.get("kind") or ds.attrs.get("kind")
    if kind in ("spike_counts", "continuous"):
        return kind
    if kind:
        raise ValueError(f"unknown activity kind {kind!r}; valid: 'spike_counts', 'continuous'")
    return "spike_counts" if np.issubdtype(ds["activity"].dtype, np.integer) else "continuous"


def trial_arrays(ds: xr.Dataset, history: int) -> dict[str, np.ndarray]:
    """Per-trial tanh frames and targets of every trial, from window bin s0 on.

    s0 = :func:`first_bin` (0 when the dataset holds L history bins before each window).
    The (trial, time - s0, L, unit) history stack is ``lagged_stack(th, L)``; build it a
    few trials at a time, it is L times the frame's size.

    Returns:
        th: (trial, frame bin, unit) float32 tanh of the frame (the p history bins before
        the window, then the window, :func:`history_frame`); window bin t (t >= s0) is
        predicted from frame bins t + p - l, l = 1..L;
        x: (trial, time - s0, unit) float32 targets (window bins s0..);
        valid: (trial, time - s0) bool, target and its L history bins observed;
        u: (trial, time - s0, unit) float32 known input of each target, or None when the
        dataset has no ``input``; start: s0.
    Raises:
        ValueError: trials not longer than s0 bins.
    """
    frame, _, p = history_frame(ds, history)
    n_frame = frame.shape[1]
    s0 = history - p
    if n_frame - p <= s0:
        raise ValueError(f"trials have {n_frame - p} bins; history={history} needs more")
    valid = valid_bins(ds, history)[:, s0:]
    u = None
    if "input" in ds:
        u = ds["input"].transpose(*DIMS).values.astype(np.float32)[:, s0:]
    th = np.tanh(frame)
    return {"th": th, "x": frame[:, history:], "valid": valid, "u": u, "start": s0}


def lagged_stack(th: np.ndarray, history: int) -> np.ndarray:
    """(trial, frame bin, unit) tanh frame -> (trial, frame bin - L, L, unit) history
    stack: [:, j, l - 1] = th[:, L + j - l], the lag-l history of target frame bin L + j."""
    n_frame = th.shape[1]
    return np.stack([th[:, history - lag : n_frame - lag] for lag in range(1, history + 1)], 2)


class HistoryBins:
    """The (bin, L, unit) history stack tanh(x_{t-l}), l = 1..L, of a split's bins,
    gathered from the tanh frame when indexed: it holds the frame, not L copies of it
    (ALM at 5 ms bins with L = 40: 86 MB instead of 3.2 GB per copy).

    The frame is kept with its rows reversed, so that the L history rows of a bin, lag 1
    first, are one contiguous block of a strided view (one block copy per bin, as
    indexing a materialised stack is).

    Args:
        th: (trial * frame bin, unit) float32 tanh frame, trials one after another.
        pos: (bin,) int64 row of each bin's target in ``th`` (>= L); its lag l is row
            pos - l.
        history: L.
    """

    def __init__(self, th: torch.Tensor, pos: torch.Tensor, history: int):
        self.history = int(history)
        # row r of th is row R - 1 - r here; row-major, which the strided view assumes
        # (flip keeps a non-contiguous input's strides)
        self._rev = th.flip(0).contiguous()
        self._start = th.shape[0] - pos  # rows R - pos .. R - pos + L - 1: pos - 1 .. pos - L
        n_rows, n_unit = self._rev.shape
        self._windows = self._rev.as_strided(
            (max(n_rows - self.history + 1, 0), self.history, n_unit), (n_unit, n_unit, 1)
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self._start), self.history, int(self._rev.shape[1]))

    @property
    def device(self):
        return self._rev.device

    def dim(self) -> int:
        return 3

    def __len__(self) -> int:
        return len(self._start)

    def __getitem__(self, idx) -> torch.Tensor:
        """(*idx.shape, L, unit) float32 history of the bins ``idx`` (an index tensor of
        any shape, e.g. (seed, batch), or a slice)."""
        return self._windows[self._start[idx]]

    def weighted(self, psi: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """(bin, unit) history features sum_l psi_l tanh(x_{t-l}), ``chunk`` bins at a
        time; psi: (L,) kernel weights (gradients flow to them)."""
        import torch

        parts = [
            torch.einsum("l,bln->bn", psi, self[start : start + chunk])
            for start in range(0, len(self), chunk)
        ]
        return torch.cat(parts) if parts else self._rev.new_zeros((0, self._rev.shape[1]))

    def to(self, device) -> HistoryBins:
        n_rows = self._rev.shape[0]
        return HistoryBins(self._rev.flip(0).to(device), (n_rows - self._start).to(device),
                           self.history)  # fmt: skip

    def cpu(self) -> HistoryBins:
        return self.to("cpu")


def prepare(
    ds: xr.Dataset, history: int, split: str, device, learned_kernel: bool = False
) -> FitData:
    """The valid bins of the trials with ``split == split``, flattened, on ``device``.

    Raises:
        ValueError: trials not longer than L bins; every unit marked ``heldout``; a bad
        ``split`` (:func:`check_split`).
    """
    import torch

    from disrnn.models.modules import fixed_kernel

    arrays = trial_arrays(ds, history)
    trials = check_split(ds) == split
    sel = arrays["valid"] & trials[:, None]  # (trial, time - s0)
    th = arrays["th"]
    trial, j = np.nonzero(sel)  # trial-major, as the bins are flattened
    pos = torch.from_numpy(trial * th.shape[1] + history + j)  # target rows of the frame
    lagged = HistoryBins(torch.from_numpy(th.reshape(-1, th.shape[2])), pos, history)
    x = torch.from_numpy(np.ascontiguousarray(arrays["x"][sel]))  # (bin, unit)
    if learned_kernel and history > 1:
        h = lagged  # (bin, L, unit), gathered batch by batch
    else:
        h = lagged.weighted(fixed_kernel(history)).contiguous()  # (bin, unit)
    units = np.asarray(ds["unit"].values)
    input_mask = None
    if "heldout" in ds.coords:
        input_mask = torch.from_numpy(~np.asarray(ds["heldout"].values).astype(bool))
        if not bool(input_mask.any()):
            raise ValueError("every unit is marked heldout; the encoder needs held-in units")
    u = None
    if arrays["u"] is not None:
        u = torch.from_numpy(np.ascontiguousarray(arrays["u"][sel])).to(device)  # (bin, unit)
    return FitData(h.to(device), x.to(device), units, input_mask, u)
