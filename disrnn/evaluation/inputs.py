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
from disrnn.fit.tensors import activity_sha256, check_split, check_values, valid_bins

__all__ = [
    "abs_path",
    "as_fit",
    "check_data",
    "check_same_data",
    "dataset_identity",
    "fit_summary",
    "load_data",
    "null_rate",
    "posterior_scale",
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
    """A Fit: ``fit_dir`` itself when it has the Fit contract, else ``load_fit(fit_dir)``.

    Raises:
        FileNotFoundError: a folder without ``fit_info.json`` (the last file a finished
        fit writes beside its weights: an unfinished or foreign folder), or no fit at all.
    """
    if all(hasattr(fit_dir, a) for a in ("latents", "predict", "nll", "rollout")):
        return fit_dir  # already a Fit (or an object with its contract)
    from disrnn.fit import load_fit

    path = Path(fit_dir)
    if path.is_dir() and not (path / "fit_info.json").exists():
        raise FileNotFoundError(
            f"{str(path)!r} has no fit_info.json: the fit did not finish (or this is not a "
            "fit folder), so there is nothing to evaluate; run `disrnn fit` to complete it"
        )
    return load_fit(path)


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


def check_data(fit, ds: xr.Dataset, allow_other_dataset: bool = False) -> None:
    """The fit stage's data rules on the dataset under evaluation, and that it is the fit's.

    Raises:
        ValueError: no or unknown ``split`` labels, activity the fit's likelihood or the
        kind does not allow (:mod:`disrnn.fit.tensors`), another dataset than the fit's
        (:func:`check_same_data`).
    """
    check_split(ds)
    check_values(ds, getattr(getattr(fit, "config", None), "likelihood", None))
    check_same_data(fit, ds, allow_other_dataset)


def check_same_data(fit, ds: xr.Dataset, allow_other_dataset: bool = False) -> None:
    """Refuse activity other than the one the fit was trained on (config.json's dataset
    ``activity_sha256``): its split, null rates and metrics would not be the fit's.

    Raises:
        ValueError: the activity differs, unless ``allow_other_dataset`` (then a warning).
    """
    meta = getattr(fit, "meta", None) or {}
    want = (meta.get("dataset") or {}).get("activity_sha256")
    if not want or activity_sha256(ds) == want:
        return
    what = (
        f"the dataset's activity differs from the one the fit {getattr(fit, 'path', '')} "
        f"was trained on ({(meta.get('dataset') or {}).get('path') or 'in memory'})"
    )
    if not allow_other_dataset:
        raise ValueError(
            f"{what}; its train/test split and null rates are not the fit's, so the "
            "metrics would mean nothing; evaluate on the fit's dataset, or pass "
            "allow_other_dataset=True (disrnn evaluate --allow-other-dataset) to do it anyway"
        )
    log.warning("%s; evaluating anyway (allow_other_dataset)", what)


def dataset_identity(ds: xr.Dataset, path: Path | None) -> dict:
    """What an evaluation's metrics.json records of its dataset: ``dataset`` (the absolute
    path or None) and ``activity_sha256`` (:func:`disrnn.fit.tensors.activity_sha256`), by
    which a report tells evaluations of different datasets apart."""
    return {"dataset": abs_path(path), "activity_sha256": activity_sha256(ds)}


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


def posterior_scale(fit, ds, train, L, K) -> float | np.ndarray:
    """The posterior's scale for the PC and TC estimator: the fit's (K, K) matrix S of the
    posterior covariance S S^T (``Fit.posterior_scale``), else the float :func:`sigma_q`
    (a fit-like object without one; the arguments are those of :func:`sigma_q`)."""
    S = getattr(fit, "posterior_scale", None)
    return sigma_q(fit, ds, train, L, K) if S is None else np.asarray(S, dtype=float)


def sigma_q(fit, ds, train, L, K) -> float:
    """The fit's sigma_q, else the fit stage's rule of thumb for the training bins."""
    s = getattr(fit, "sigma_q", None)
    if s is not None:
        return float(s)
    n_tot = int(valid_bins(ds.isel(trial=np.flatnonzero(train)), L).sum()) if train.any() else 2
    return math.exp(rule_of_thumb_log_sigma(n_tot, K))
