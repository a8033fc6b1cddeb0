"""Free-running rollout against the held-out trials' statistics."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from disrnn.data.io import DIMS
from disrnn.plotting._base import (
    _COLORS,
    _activity,
    _condition_means,
    _conditions,
    _empty,
    _figure,
    _is_spikes,
    _rate_label,
    _split,
)


def _pairwise_corr(x: np.ndarray) -> np.ndarray:
    """Upper-triangle Pearson correlations between units of (sample, unit) data."""
    x = x[np.isfinite(x).all(axis=1)]
    if x.shape[0] < 3:
        return np.array([])
    sd = x.std(axis=0)
    keep = sd > 0
    c = np.full((x.shape[1], x.shape[1]), np.nan)
    if keep.sum() >= 2:
        c[np.ix_(keep, keep)] = np.corrcoef(x[:, keep].T)
    iu = np.triu_indices(x.shape[1], 1)
    return c[iu]


def plot_rollout(ds: xr.Dataset, rollout: xr.Dataset | xr.DataArray | None) -> Figure:
    """Free-running rollout against the held-out (test) trials' statistics.

    Panels: mean rate per unit, condition-averaged population PSTH (data solid,
    rollout dashed) and pairwise correlations between units (over bins), rollout
    against data.

    Args:
        ds: the session dataset.
        rollout: ``rollout.nc``; its (trial, time, unit) variable holds the free-running
            mean activity (expected counts for spikes), NaN before the start bin.
    """
    if rollout is None:
        return _empty("no rollout.nc in the evaluation folder")
    roll, kstep = _rollout_parts(rollout)
    if roll is None:
        return _empty("rollout.nc holds no (trial, time, unit) rollout")
    trials = np.intersect1d(roll["trial"].values, ds["trial"].values)
    sub = _split(ds.sel(trial=trials))
    obs = _activity(sub)
    r = roll.sel(trial=sub["trial"].values).astype(float)
    if _is_spikes(ds):
        r = r / float(ds.attrs.get("bin_width", 1.0) or 1.0)
    r = r.assign_coords({k: sub[k] for k in ("condition",) if k in sub.coords})
    valid = np.isfinite(r.values) & np.isfinite(obs.values)
    obs = obs.where(valid)
    r = r.where(valid)
    fig = _figure(13.0 if kstep else 10.0, 3.0)
    axes = fig.subplots(1, 4 if kstep else 3, squeeze=False)[0]
    if kstep:
        _plot_kstep(axes[3], kstep)
    om = obs.mean(("trial", "time"), skipna=True).values
    rm = r.mean(("trial", "time"), skipna=True).values
    axes[0].scatter(om, rm, s=10, color="#1b6ca8")
    _identity(axes[0], om, rm)
    axes[0].set_xlabel(f"data mean {_rate_label(ds)}")
    axes[0].set_ylabel("rollout mean")
    axes[0].set_title("mean rate per unit", fontsize=9)
    t = sub["time"].values
    for k, ((label, mo), (_, mr)) in enumerate(
        zip(_condition_means(obs), _condition_means(r), strict=False)
    ):
        c = _COLORS[k % len(_COLORS)]
        axes[1].plot(t, mo.mean("unit", skipna=True).values, color=c, lw=1.2, label=label)
        axes[1].plot(t, mr.mean("unit", skipna=True).values, color=c, lw=1.2, ls="--")
    axes[1].set_xlabel("time (s)")
    if len(_conditions(obs)) > 1:
        axes[1].legend(fontsize=7, frameon=False)
    axes[1].set_title(f"population PSTH (data —, {roll.name or 'rollout'} --)", fontsize=9)
    co = _pairwise_corr(obs.values.reshape(-1, obs.sizes["unit"]))
    cr = _pairwise_corr(r.values.reshape(-1, r.sizes["unit"]))
    if co.size and cr.size:
        axes[2].scatter(co, cr, s=5, alpha=0.5, color="#6a4c93")
        _identity(axes[2], co, cr)
    axes[2].set_xlabel("data correlation")
    axes[2].set_ylabel("rollout correlation")
    axes[2].set_title("pairwise correlations", fontsize=9)
    return fig


def _rollout_parts(rollout) -> tuple[xr.DataArray | None, dict | None]:
    """(the free-running (trial, time, unit) variable or None, the k-step curves or None)
    of ``rollout.nc`` (a sampled rollout first) or of a bare DataArray."""
    if not isinstance(rollout, xr.Dataset):
        return rollout, None
    kstep = {n: rollout[n] for n in ("kstep_r2", "kstep_bps") if n in rollout.data_vars}
    names = [
        n for n in ("rollout_sample", "rollout_mean", "rollout", "rates") if n in rollout.data_vars
    ]
    cands = [rollout[n] for n in names] or [
        v for v in rollout.data_vars.values() if tuple(v.dims) == DIMS
    ]
    return (cands[0] if cands else None), kstep


def _plot_kstep(ax, kstep: dict) -> None:
    """The k-step-ahead curves (name -> values over ``horizon``)."""
    for k, (name, da) in enumerate(kstep.items()):
        h = (
            da[da.dims[0]].values
            if da.dims and da.dims[0] in da.coords
            else np.arange(1, da.size + 1)
        )
        ax.plot(h, da.values, "o-", ms=3, color=_COLORS[k], label=name.replace("kstep_", ""))
    ax.set_xlabel("steps ahead k")
    ax.set_title("k-step-ahead prediction", fontsize=9)
    ax.legend(fontsize=8, frameon=False)


def _identity(ax, a, b) -> None:
    both = np.concatenate([np.ravel(a), np.ravel(b)])
    both = both[np.isfinite(both)]
    if both.size:
        lo, hi = both.min(), both.max()
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
