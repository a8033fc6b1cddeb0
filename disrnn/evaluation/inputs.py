"""The fit and dataset under evaluation: loading, checking that they match, and what
:func:`disrnn.evaluation.evaluate` records about them (identity, null rates, the
aggregated posterior's width). The data rules (kind, valid bins, activity fingerprint,
sigma_q's rule of thumb) are the fit stage's own (``disrnn.fit.tensors``,
``disrnn.fit.defaults``), called, not copied."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np
import xarray as xr

from disrnn.data.io import DIMS, load_dataset
from disrnn.fit.defaults import rule_of_thumb_log_sigma
from disrnn.fit.tensors import activity_sha256, valid_bins

__all__ = [
    "abs_path",
    "as_fit",
    "check_same_data",
    "fit_summary",
    "load_data",
    "null_rate",
    "session_id",
    "sigma_q",
]

# warnings keep the evaluation's logger, as before this module was split off
log = logging.getLogger("disrnn.evaluation.evaluate")


#: the dataset attrs every evaluation (a fit's or a reference's) copies into metrics.json
SESSION_ATTRS = (
    "source",
    "dandiset",
    "dandiset_version",
    "asset_path",
    "nwb_path",
    "sha256",
    "bin_width",
    "alignment",
)


def as_fit(fit_dir):
    """A Fit: ``fit_dir`` itself when it has the Fit contract, else ``load_fit(fit_dir)``."""
    if all(hasattr(fit_dir, a) for a in ("latents", "predict", "nll", "rollout")):
        return fit_dir  # already a Fit (or an object with its contract)
    from disrnn.fit import load_fit

    return load_fit(fit_dir)


def load_data(dataset) -> tuple[xr.Dataset, Path | None]:
    """(Dataset, its path or None) from a Dataset or a path."""
    if isinstance(dataset, xr.Dataset):
        return dataset, None
    if isinstance(dataset, str | os.PathLike):
        return load_dataset(dataset), Path(dataset)
    raise TypeError(f"dataset must be an xarray.Dataset or a path, got {type(dataset).__name__}")


def fit_summary(fit) -> dict:
    """What metrics.json records of the fit: beta, alpha, fit_seconds, epochs, best_epoch."""
    info = getattr(fit, "info", None) or {}
    config = getattr(fit, "config", None)
    return {
        "beta": getattr(config, "beta", None),
        "alpha": getattr(config, "alpha", None),
        "fit_seconds": info.get("seconds"),
        "epochs": info.get("epochs", info.get("epochs_run")),
        "best_epoch": info.get("best_epoch"),
    }


def check_same_data(fit, ds: xr.Dataset) -> None:
    """Warn when the activity differs from the one the fit was trained on."""
    meta = getattr(fit, "meta", None) or {}
    want = (meta.get("dataset") or {}).get("activity_sha256")
    if not want:
        return
    if activity_sha256(ds) != want:
        log.warning(
            "the dataset's activity differs from the one this fit was trained on; "
            "its train/test split and null rates may not be the fit's"
        )


def abs_path(path) -> str | None:
    """The absolute path of ``path`` as a string; None for None or a non-path."""
    return (
        None
        if path is None or not isinstance(path, str | os.PathLike)
        else str(Path(path).resolve())
    )


def session_id(ds: xr.Dataset, path: Path | None, session: str | None = None) -> str | None:
    """The session id metrics.json records: ``session`` when given (the workflow gives its
    config's id), else the dataset's attrs ``session``, else the dataset file's stem."""
    if session is not None:
        return str(session)
    if ds.attrs.get("session"):
        return str(ds.attrs["session"])
    return None if path is None else path.stem


def null_rate(ds: xr.Dataset, L: int) -> np.ndarray:
    """(unit,) mean activity per valid bin of ``ds`` (the training trials)."""
    x = ds["activity"].transpose(*DIMS).values.astype(float)
    ok = valid_bins(ds, L)
    return x[ok].mean(0) if ok.any() else np.full(x.shape[2], np.nan)


def sigma_q(fit, ds, train, L, K) -> float:
    """The fit's sigma_q, else the fit stage's rule of thumb for the training bins."""
    s = getattr(fit, "sigma_q", None)
    if s is not None:
        return float(s)
    n_tot = int(valid_bins(ds.isel(trial=np.flatnonzero(train)), L).sum()) if train.any() else 2
    return math.exp(rule_of_thumb_log_sigma(n_tot, K))
