"""Generation from a fitted model: k-step-ahead prediction and free-running rollouts.

Works on any object with the Fit contract of docs/design.md (``rollout``, ``predict``,
``history``); the data are an ``xarray.Dataset`` with ``activity`` (trial, time, unit).

- k-step-ahead: from a start bin s (the bins before s are real), the network runs on its
  own, feeding back its mean predictions; the prediction of bin s + k - 1 is its
  k-step-ahead prediction (k = 1 is the ordinary one-step prediction). Several starts per
  trial are pooled so that the horizon is not confounded with the time in the trial.
- free-running: from the first predictable bin (L) to the end of the trial, once feeding
  back means and once sampling latents and observations (seeded ``torch.Generator``).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from disrnn.data.io import DIMS, clean_attrs
from disrnn.evaluation import metrics as mt
from disrnn.evaluation.metrics import bits_per_spike, r2_per_unit
from disrnn.fit.tensors import first_bin, valid_bins

__all__ = [
    "free_run",
    "generation_metrics",
    "history_length",
    "kstep_ahead",
    "rollout_dataset",
]


def history_length(fit, ds: xr.Dataset | None = None) -> int:
    """L, the number of history-only bins at the start of each trial.

    ``fit.history`` when present, else the number of leading all-NaN bins of
    ``fit.predict(ds)``.
    """
    if getattr(fit, "history", None) is not None:
        return int(fit.history)
    if ds is None:
        raise ValueError("fit has no 'history' attribute; pass the dataset to infer it")
    pred = fit.predict(ds).transpose(*DIMS).values
    finite = np.isfinite(pred).any(axis=(0, 2))
    return int(np.argmax(finite)) if finite.any() else pred.shape[1]


def _to_full_time(da: xr.DataArray, ds: xr.Dataset, start: int) -> np.ndarray:
    """(trial, n_steps, unit) rollout -> (trial, time, unit) on ds's bins, NaN elsewhere."""
    vals = da.transpose(*DIMS).values
    out = np.full((ds.sizes["trial"], ds.sizes["time"], vals.shape[2]), np.nan)
    n = min(vals.shape[1], ds.sizes["time"] - start)
    out[:, start : start + n] = vals[:, :n]
    return out


def default_horizons(n_pred: int) -> list[int]:
    """1, 2, 4, 8, ... up to ``n_pred`` (the number of predictable bins per trial)."""
    out, k = [], 1
    while k <= n_pred:
        out.append(k)
        k *= 2
    return out


def kstep_ahead(fit, ds, horizons=None, n_starts=4, null_rate=None, kind="spike_counts"):
    """k-step-ahead prediction quality on the trials of ``ds``.

    Args:
        fit: a Fit (see module doc).
        ds: Dataset, normally the test trials.
        horizons: k values (default :func:`default_horizons`, capped at the trial length).
        n_starts: start bins per trial, evenly spaced in [L, T - max(horizons)].
        null_rate: (unit,) training mean counts per bin, for bits per spike (spike counts).
        kind: ``spike_counts`` or ``continuous``.

    Returns:
        Dataset on dim ``horizon``: ``kstep_r2`` (pooled R^2 of the mean prediction vs the
        observed activity), ``kstep_bps`` (bits per spike vs ``null_rate``; NaN for
        continuous data), ``kstep_n`` (number of scored bins).
    """
    L = history_length(fit, ds)
    s0 = first_bin(ds, L)  # the first bin with a full history
    n_time = ds.sizes["time"]
    n_pred = n_time - s0
    if n_pred < 1:
        raise ValueError(f"trials of {n_time} bins leave nothing to predict after L={L}")
    horizons = default_horizons(n_pred) if horizons is None else sorted(set(horizons))
    horizons = [int(k) for k in horizons if 1 <= k <= n_pred]
    kmax = max(horizons)
    starts = np.unique(np.linspace(s0, n_time - kmax, max(1, n_starts)).round().astype(int))
    x = ds["activity"].transpose(*DIMS).values.astype(float)
    ok = valid_bins(ds, L)
    obs = {k: [] for k in horizons}
    pred = {k: [] for k in horizons}
    for s in starts:
        r = fit.rollout(ds, n_steps=kmax, start=int(s), sample=False)
        r = r.transpose(*DIMS).values
        for k in horizons:
            t = s + k - 1
            keep = ok[:, t]
            obs[k].append(x[keep, t])  # (trial', unit)
            pred[k].append(r[keep, k - 1])
    r2, bps, n = [], [], []
    for k in horizons:
        o = np.concatenate(obs[k])[:, None]  # (sample, 1, unit)
        p = np.concatenate(pred[k])[:, None]
        r2.append(r2_per_unit(o, p)[1] if o.shape[0] > 1 else np.nan)
        if kind == "spike_counts" and null_rate is not None:
            bps.append(bits_per_spike(o, p, null_rate))
        else:
            bps.append(np.nan)
        n.append(o.shape[0])
    return xr.Dataset(
        {
            "kstep_r2": ("horizon", np.asarray(r2, float)),
            "kstep_bps": ("horizon", np.asarray(bps, float)),
            "kstep_n": ("horizon", np.asarray(n, int)),
        },
        coords={"horizon": np.asarray(horizons, int)},
        attrs={"kstep_starts": starts.astype(int)},
    )


def free_run(fit, ds, seed=0):
    """Free-running rollouts from bin L to the end of every trial of ``ds``.

    Args:
        fit: a Fit; ds: Dataset (normally the test trials); seed: seeds the sampled rollout.

    Returns:
        (mean, sample): two (trial, time, unit) float arrays on ds's bins (NaN on the first
        L bins): feeding back mean predictions, and sampling latents and observations.
    """
    import torch

    L = history_length(fit, ds)
    s0 = first_bin(ds, L)  # the first bin with a full history
    n_steps = ds.sizes["time"] - s0
    if n_steps < 1:
        raise ValueError(f"trials of {ds.sizes['time']} bins leave nothing to generate after L={L}")
    mean = fit.rollout(ds, n_steps=n_steps, start=s0, sample=False)
    gen = torch.Generator().manual_seed(int(seed))
    sample = fit.rollout(ds, n_steps=n_steps, start=s0, sample=True, generator=gen)
    return _to_full_time(mean, ds, s0), _to_full_time(sample, ds, s0)


def _activity(ds: xr.Dataset) -> np.ndarray:
    return ds["activity"].transpose(*DIMS).values.astype(float)


def _condition(ds: xr.Dataset):
    return ds["condition"].values if "condition" in ds.coords else None


def generation_metrics(fit, ds_test, ds_train, null_rate, kind, seed=0):
    """k-step-ahead quality and free-running statistics against the test trials.

    Args:
        fit: a Fit; ds_test: the test trials; ds_train: the training trials (None: no
        reference); null_rate: (unit,) training mean per bin; kind: data kind; seed: seeds
        the sampled rollout.

    Returns:
        (metrics, kstep, rollout_mean, rollout_sample): the flat metrics (keys documented in
        :func:`disrnn.evaluation.evaluate`), the :func:`kstep_ahead` Dataset and the two
        (trial, time, unit) free-running arrays of :func:`free_run`.
    """
    L = history_length(fit, ds_test)
    ks = kstep_ahead(fit, ds_test, null_rate=null_rate, kind=kind)
    horizons = [str(int(k)) for k in ks.horizon.values]
    m: dict = {"kstep_r2": dict(zip(horizons, ks.kstep_r2.values.tolist(), strict=True))}
    m["kstep_bps"] = (
        dict(zip(horizons, ks.kstep_bps.values.tolist(), strict=True))
        if kind == "spike_counts"
        else None
    )
    roll_mean, roll_sample = free_run(fit, ds_test, seed=seed)
    x, cond, v = _activity(ds_test), _condition(ds_test), valid_bins(ds_test, L)[..., None]
    m.update({f"freerun_{k}": val for k, val in mt.mean_rate_stats(x, roll_sample, v).items()})
    m["freerun_psth_r2"] = mt.psth_r2(x, roll_sample, cond, valid=v)
    m.update({f"freerun_{k}": val for k, val in mt.corr_similarity(x, roll_sample, v).items()})
    m["freerun_mean_psth_r2"] = mt.psth_r2(x, roll_mean, cond, valid=v)
    if ds_train is not None:
        xt, ct, vt = _activity(ds_train), _condition(ds_train), valid_bins(ds_train, L)[..., None]
        m["reference_rate_pearson"] = mt.mean_rate_stats(x, xt, v, vt)["rate_pearson"]
        m["reference_psth_r2"] = mt.psth_r2(x, xt, cond, ct, v, vt)
        m["reference_corr_pearson"] = mt.corr_similarity(x, xt, v, vt)["corr_pearson"]
    return m, ks, roll_mean, roll_sample


def rollout_dataset(ds_test, arrays, valid, per_unit, kstep, attrs) -> xr.Dataset:
    """The ``rollout.nc`` Dataset of the test trials.

    Args:
        ds_test: the test trials (coords trial, split, condition, time, unit, heldout).
        arrays: {name: (trial, time, unit) float}, stored as float32.
        valid: (trial, time) bool scored bins (stored as int8: NetCDF has no bool).
        per_unit: {name: (unit,) float}.
        kstep: the :func:`kstep_ahead` Dataset (dim horizon).
        attrs: dataset attrs.
    """
    coords = {"trial": ds_test["trial"].values, "time": ds_test["time"].values}
    for name in ("split", "condition"):
        if name in ds_test.coords and ds_test[name].dims == ("trial",):
            coords[name] = ("trial", np.asarray(ds_test[name].values).astype(str))
    coords["unit"] = ds_test["unit"].values
    if "heldout" in ds_test.coords:
        coords["heldout"] = ("unit", np.asarray(ds_test["heldout"].values).astype(np.int8))
    dims = DIMS
    data = {k: (dims, np.asarray(v, dtype=np.float32)) for k, v in arrays.items()}
    data["valid"] = (("trial", "time"), np.asarray(valid).astype(np.int8))
    data.update({k: ("unit", np.asarray(v, dtype=float)) for k, v in per_unit.items()})
    out = xr.Dataset(data, coords=coords, attrs=clean_attrs(attrs))
    out = out.merge(xr.Dataset(dict(kstep.data_vars)))  # curves on dim horizon
    out.attrs["kstep_starts"] = np.asarray(kstep.attrs["kstep_starts"], dtype=int)
    return out
