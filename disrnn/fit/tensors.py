"""The dataset at the model boundary: checked, described, and turned into tensors.

The data rules of a fit live here, once, and evaluation calls them too:
``dataset_kind`` (spike counts or continuous), ``valid_bins`` (which bins are scored),
``activity_sha256`` (the fingerprint a fit records of its data). ``load_input`` checks a
Dataset (or loads one from a path) and fingerprints it; ``trial_arrays`` builds per-trial
history stacks; ``prepare`` flattens the valid bins of one split into a :class:`FitData`.

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

if TYPE_CHECKING:
    import torch

__all__ = [
    "FitData",
    "activity_sha256",
    "dataset_kind",
    "load_input",
    "prepare",
    "trial_arrays",
    "valid_bins",
]


@dataclasses.dataclass
class FitData:
    """Bins of one split, flattened, on the device.

    h: (bin, unit) history features (fixed kernel) or (bin, L, unit) tanh of the L
    previous bins (learned kernel); x: (bin, unit) float32 targets; u: (bin, unit)
    float32 known input of each target bin (the dataset's ``input``), or None.
    """

    h: torch.Tensor
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
        FileNotFoundError: missing path; ValueError: no ``activity``, wrong dims, or an
        ``input`` that is not a finite (trial, time, unit) array of activity's shape.
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


def activity_sha256(ds: xr.Dataset) -> str:
    """sha256 of the bytes of ``activity`` as stored (C order): the data a fit was fitted to."""
    act = np.ascontiguousarray(ds["activity"].values)
    return hashlib.sha256(act.tobytes()).hexdigest()


def valid_bins(ds: xr.Dataset, history: int) -> np.ndarray:
    """(trial, time) bool: the bins a fit is trained on and scored on.

    A bin t is valid when t >= L and bins t - L .. t are all observed (``mask``, when
    present), so a prediction made from an unobserved (zero-filled) history never counts.
    """
    n_trial, n_time = ds.sizes["trial"], ds.sizes["time"]
    ok = np.zeros((n_trial, n_time), dtype=bool)
    ok[:, history:] = True
    if "mask" in ds:
        mask = ds["mask"].transpose("trial", "time").values.astype(bool)
        for lag in range(history + 1):
            ok[:, history:] &= mask[:, history - lag : n_time - lag]
    return ok


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
    """Per-trial history stacks and targets of every trial.

    Returns:
        lagged: (trial, time - L, L, unit) float32 tanh(x_{t-l}), l = 1..L;
        x: (trial, time - L, unit) float32 targets (bins L.. of each trial);
        valid: (trial, time - L) bool, target and its L history bins unmasked;
        u: (trial, time - L, unit) float32 known input of each target, or None when the
        dataset has no ``input``.
    Raises:
        ValueError: trials not longer than L bins.
    """
    act = ds["activity"].values.astype(np.float32)  # (trial, time, unit)
    n_time = act.shape[1]
    if n_time <= history:
        raise ValueError(f"trials have {n_time} bins; history={history} needs more")
    th = np.tanh(act)
    lagged = np.stack(
        [th[:, history - lag : n_time - lag] for lag in range(1, history + 1)], axis=2
    )
    valid = valid_bins(ds, history)[:, history:]
    u = None
    if "input" in ds:
        u = ds["input"].transpose(*DIMS).values.astype(np.float32)[:, history:]
    return {"lagged": lagged, "x": act[:, history:], "valid": valid, "u": u}


def prepare(
    ds: xr.Dataset, history: int, split: str, device, learned_kernel: bool = False
) -> FitData:
    """The valid bins of the trials with ``split == split``, flattened, on ``device``.

    Without a ``split`` coordinate every trial counts as ``train``.

    Raises:
        ValueError: trials not longer than L bins; every unit marked ``heldout``.
    """
    import torch

    from disrnn.models.modules import fixed_kernel

    arrays = trial_arrays(ds, history)
    if "split" in ds.coords:
        trials = np.asarray(ds["split"].values).astype(str) == split
    else:
        trials = np.full(ds.sizes["trial"], split == "train")
    sel = arrays["valid"] & trials[:, None]  # (trial, time - L)
    lagged = torch.from_numpy(arrays["lagged"][sel])  # (bin, L, unit)
    x = torch.from_numpy(np.ascontiguousarray(arrays["x"][sel]))  # (bin, unit)
    if learned_kernel and history > 1:
        h = lagged
    else:
        h = torch.einsum("l,bln->bn", fixed_kernel(history), lagged)
    units = np.asarray(ds["unit"].values)
    input_mask = None
    if "heldout" in ds.coords:
        input_mask = torch.from_numpy(~np.asarray(ds["heldout"].values).astype(bool))
        if not bool(input_mask.any()):
            raise ValueError("every unit is marked heldout; the encoder needs held-in units")
    u = None
    if arrays["u"] is not None:
        u = torch.from_numpy(np.ascontiguousarray(arrays["u"][sel])).to(device)  # (bin, unit)
    return FitData(h.contiguous().to(device), x.to(device), units, input_mask, u)
