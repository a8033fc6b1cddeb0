"""PCA as a reference for continuous sessions: principal components of the training trials'
held-in activity as latents, scored with the DisRNN evaluation's read-outs (see
:mod:`disrnn.evaluation.references` for the scored bins and the folder it is written to)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import xarray as xr

from disrnn.data.io import behavior_variables
from disrnn.evaluation import alignment as al
from disrnn.evaluation import metrics as mt
from disrnn.evaluation.decoding import condition_decoding, latent_behavior_r2
from disrnn.evaluation.inputs import load_data
from disrnn.evaluation.reference_inputs import (
    condition_labels,
    heldout_units,
    reference_identity,
    split_arrays,
)
from disrnn.fit.tensors import valid_bins

__all__ = ["PCAResult", "pca_reference"]


@dataclass
class PCAResult:
    """Output of :func:`pca_reference`.

    Attributes:
        metrics: the ``metrics.json`` dict. latents: (trial, time, latent) projections of
            every trial (NaN on unobserved bins), coords ``split``, ``latent_group`` (0).
        components: (latent, unit) orthonormal PCs of the held-in units (unit = held-in).
        mean: (unit,) training mean of the held-in units.
    """

    metrics: dict
    latents: xr.DataArray
    components: xr.DataArray
    mean: np.ndarray


def pca_reference(dataset, n_components: int, seed: int = 0, condition=None, history: int = 0):
    """K principal components of the training trials' held-in activity as latents.

    PCs: the top K right singular vectors V_K of the centred (bin, held-in unit) matrix of
    the training trials' observed bins (sign: largest loading positive). Latents of every
    trial ``z_t = (x_t - mean) V_K``. Read-outs on the test trials' scored bins:

    - ``recon_r2`` pooled R^2 over all units of ``x_hat`` = mean + z V_K^T (held-in) and an
      affine map z -> held-out units fitted on the training bins (held-out);
      ``recon_r2_unit_mean``, ``recon_r2_heldin``, ``recon_r2_heldout`` (null without
      held-out units). Unlike a fit's one-step prediction, the held-in reconstruction uses
      the bin itself: an upper reference, not a like-for-like one.
    - ``behavior_r2`` {name: {"all": R^2, "running_sum": R^2}}: the DisRNN evaluation's
      protocol exactly (:func:`~disrnn.evaluation.decoding.latent_behavior_r2`, 5-fold
      GroupKFold over test trials, on the scored test bins).
    - with a condition: ``condition_accuracy``, ``condition_accuracy_time_mean``,
      ``condition_chance`` (:func:`~disrnn.evaluation.decoding.condition_decoding`).

    Raises:
        ValueError: K not in 1..n_held_in, no train/test trials, too few training bins.
    """
    t0 = time.perf_counter()
    ds, ds_path = load_data(dataset)
    split, train, test = split_arrays(ds)
    ho = heldout_units(ds)
    n_in = int((~ho).sum())
    if not isinstance(n_components, int | np.integer) or not 1 <= n_components <= n_in:
        raise ValueError(
            f"n_components must be an int in 1..{n_in} (held-in units), got {n_components!r}"
        )
    x = ds["activity"].transpose("trial", "time", "unit").values.astype(float)
    obs, ok = valid_bins(ds, 0), valid_bins(ds, history)
    mean, V = _principal_components(x[train][obs[train]][:, ~ho], n_components)
    z = (x[..., ~ho] - mean) @ V  # (trial, time, latent)
    z[~obs] = np.nan
    recon = np.full_like(x, np.nan)
    recon[..., ~ho] = mean + z @ V.T
    if ho.any():
        M, c = al.affine_fit(z[train][obs[train]], x[train][obs[train]][:, ho])
        recon[..., ho] = z @ M + c
    seconds = time.perf_counter() - t0

    te = np.flatnonzero(test)
    ok_te = ok[te]
    m = reference_identity(ds, ds_path, "pca", seed, history, test, ok_te, ho)
    m.update(
        {
            "likelihood": None,
            "n_components": int(n_components),
            "fit_seconds": float(seconds),
            **_recon_metrics(x[te], recon[te], ok_te, ho),
            "co_bps": None,
            "test_ll_heldout_per_bin_neuron": None,
            "behavior_r2": _behavior_r2(ds, z[te], ok_te),
        }
    )
    labels = condition_labels(ds, condition)
    if labels is not None:
        # on the bins a fit with history L scores, as the fits' decoding
        dec = condition_decoding(np.where(ok[..., None], z, np.nan), labels, split, seed=seed)
        m.update(
            {
                k: dec[k]
                for k in ("condition_accuracy", "condition_accuracy_time_mean", "condition_chance")
            }
        )
    comps = xr.DataArray(
        V.T, dims=("latent", "unit"), coords={"unit": ds["unit"].values[~ho]}, name="components"
    )
    return PCAResult(m, _latents(ds, z, split, labels), comps, mean)


def _principal_components(xtr: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean (unit,), V (unit, k)): the top k right singular vectors of the centred
    (bin, unit) matrix ``xtr``, each signed so that its largest loading is positive.

    Raises:
        ValueError: no more bins than components.
    """
    if xtr.shape[0] <= k:
        raise ValueError(f"{xtr.shape[0]} training bins cannot give {k} components")
    mean = xtr.mean(0)
    _, _, vt = np.linalg.svd(xtr - mean, full_matrices=False)
    V = vt[:k].T  # (held-in, latent)
    V *= np.sign(V[np.abs(V).argmax(0), np.arange(k)])
    return mean, V


def _recon_metrics(x_te, recon_te, ok_te, ho) -> dict:
    """Pooled and per-unit R^2 of the reconstruction on the scored test bins, all units,
    held-in and held-out (null without held-out units)."""
    r2u, pooled = mt.r2_per_unit(x_te, recon_te, ok_te[..., None])
    return {
        "recon_r2": pooled,
        "recon_r2_unit_mean": float(np.nanmean(r2u)) if np.isfinite(r2u).any() else None,
        "recon_r2_heldin": mt.r2_per_unit(x_te[..., ~ho], recon_te[..., ~ho], ok_te[..., None])[1],
        "recon_r2_heldout": (
            mt.r2_per_unit(x_te[..., ho], recon_te[..., ho], ok_te[..., None])[1]
            if ho.any()
            else None
        ),
    }


def _latents(ds, z, split, labels) -> xr.DataArray:
    """(trial, time, latent) PCA latents of every trial with the coords of latents.nc."""
    k = z.shape[2]
    return xr.DataArray(
        z,
        dims=("trial", "time", "latent"),
        coords={
            "trial": ds["trial"].values,
            "time": ds["time"].values,
            "latent": np.arange(k),
            "latent_group": ("latent", np.zeros(k, int)),
            "split": ("trial", split),
            **({} if labels is None else {"condition": ("trial", labels)}),
        },
        name="latents",
    )


def _behavior_r2(ds, z_test, ok_te) -> dict | None:
    """The DisRNN evaluation's behavior protocol on (test trial, time, latent) latents."""
    beh = behavior_variables(ds)
    if not beh:
        return None
    test = np.asarray(ds["split"].values).astype(str) == "test"
    return {
        name: latent_behavior_r2(
            z_test, ok_te, ds[name].transpose("trial", "time", ...).values[test]
        )
        for name in beh
    }
