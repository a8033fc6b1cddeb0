"""The fit and dataset under evaluation: loading, checking that they match, and what
:func:`disrnn.evaluation.evaluate` records about them (identity, kind, null rates,
the aggregated posterior's width)."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import xarray as xr

from disrnn.data.io import load_dataset
from disrnn.evaluation.rollout import valid_bins

# warnings keep the evaluation's logger, as before this module was split off
log = logging.getLogger("disrnn.evaluation.evaluate")


def _load_fit(fit_dir):
    if all(hasattr(fit_dir, a) for a in ("latents", "predict", "nll", "rollout")):
        return fit_dir  # already a Fit (or an object with its contract)
    from disrnn.fit import load_fit

    return load_fit(fit_dir)


def _load(dataset) -> tuple[xr.Dataset, Path | None]:
    if isinstance(dataset, xr.Dataset):
        return dataset, None
    if isinstance(dataset, str | os.PathLike):
        return load_dataset(dataset), Path(dataset)
    raise TypeError(f"dataset must be an xarray.Dataset or a path, got {type(dataset).__name__}")


def _fit_info(fit) -> dict:
    info = getattr(fit, "info", None) or {}
    config = getattr(fit, "config", None)
    return {
        "beta": getattr(config, "beta", None),
        "alpha": getattr(config, "alpha", None),
        "fit_seconds": info.get("seconds"),
        "epochs": info.get("epochs", info.get("epochs_run")),
        "best_epoch": info.get("best_epoch"),
    }


def _check_same_data(fit, ds: xr.Dataset) -> None:
    """Warn when the activity differs from the one the fit was trained on."""
    meta = getattr(fit, "meta", None) or {}
    want = (meta.get("dataset") or {}).get("activity_sha256")
    if not want:
        return
    act = np.ascontiguousarray(ds["activity"].values)
    if hashlib.sha256(act.tobytes()).hexdigest() != want:
        log.warning(
            "the dataset's activity differs from the one this fit was trained on; "
            "its train/test split and null rates may not be the fit's"
        )


def _abs(path) -> str | None:
    return (
        None
        if path is None or not isinstance(path, str | os.PathLike)
        else str(Path(path).resolve())
    )


def _session(ds: xr.Dataset, path: Path | None) -> str | None:
    if ds.attrs.get("session"):
        return str(ds.attrs["session"])
    if path is None:
        return None
    return path.resolve().parent.name if path.stem == "dataset" else path.stem


def _kind(ds: xr.Dataset) -> str:
    kind = ds["activity"].attrs.get("kind") or ds.attrs.get("kind")
    if kind in ("spike_counts", "continuous"):
        return kind
    return "spike_counts" if np.issubdtype(ds["activity"].dtype, np.integer) else "continuous"


def _null_rate(ds: xr.Dataset, L: int) -> np.ndarray:
    """(unit,) mean activity per valid bin of ``ds`` (the training trials)."""
    x = ds["activity"].transpose("trial", "time", "unit").values.astype(float)
    ok = valid_bins(ds, L)
    return x[ok].mean(0) if ok.any() else np.full(x.shape[2], np.nan)


def _sigma_q(fit, ds, train, L, K) -> float:
    s = getattr(fit, "sigma_q", None)
    if s is not None:
        return float(s)
    n_tot = int(valid_bins(ds.isel(trial=np.flatnonzero(train)), L).sum()) if train.any() else 2
    return float(max(n_tot, 2) ** (-1.0 / (K + 4)))  # the kernel-density rule of thumb
