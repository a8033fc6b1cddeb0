"""Data overview figures from a session dataset: rasters, mean rates, PSTHs."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from disrnn.plotting._base import (
    _COLORS,
    _activity,
    _condition_means,
    _conditions,
    _figure,
    _is_spikes,
    _rate_label,
    _split,
)
from disrnn.plotting.units import unit_ticks


# -------------------------------------------------------------------------- data overview
def plot_rasters(ds: xr.Dataset, n_trials: int = 4) -> Figure:
    """Spike counts (or activity) of example test trials, one panel per trial.

    The first test trial of each condition is shown (up to ``n_trials``); units are
    ordered held-in first, held-out last (marked by a line) and labelled by NWB id.
    """
    sub = _split(ds)
    conds = _conditions(sub)
    picks = []
    for c in conds:
        idx = np.flatnonzero(sub["condition"].values == c)
        if idx.size:
            picks.append(int(idx[0]))
        if len(picks) == n_trials:
            break
    for i in range(sub.sizes["trial"]):
        if len(picks) >= n_trials:
            break
        if i not in picks:
            picks.append(i)
    x = _activity(sub)
    order = np.arange(sub.sizes["unit"])
    n_heldin = sub.sizes["unit"]
    if "heldout" in sub.coords:
        held = sub["heldout"].values.astype(bool)
        order = np.concatenate([np.flatnonzero(~held), np.flatnonzero(held)])
        n_heldin = int((~held).sum())
    t = sub["time"].values
    fig = _figure(2.6 * len(picks) + 0.8, 3.0)
    axes = fig.subplots(1, len(picks), sharey=True, squeeze=False)[0]
    vmax = np.nanpercentile(x.values, 99) if np.isfinite(x.values).any() else 1.0
    im = None
    for ax, i in zip(axes, picks, strict=False):
        img = x.isel(trial=i).values[:, order].T
        dt = (t[1] - t[0]) if t.size > 1 else 1.0
        im = ax.imshow(
            img,
            aspect="auto",
            origin="lower",
            interpolation="nearest",
            cmap="Greys",
            vmin=0 if _is_spikes(ds) else None,
            vmax=vmax,
            extent=(t[0] - dt / 2, t[-1] + dt / 2, -0.5, img.shape[0] - 0.5),
        )
        if n_heldin < len(order):
            ax.axhline(n_heldin - 0.5, color="#d1495b", lw=0.8)
        title = f"trial {sub['trial'].values[i]}"
        if conds:
            title += f"\n{sub['condition'].values[i]}"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel(
        "unit (NWB id; held-out above red line)" if n_heldin < len(order) else "unit (NWB id)"
    )
    unit_ticks(axes[0], sub["unit"].values[order], "y", max_ticks=20)
    if im is not None:
        fig.colorbar(im, ax=list(axes), label=_rate_label(ds), shrink=0.8)
    return fig


def plot_mean_rates(ds: xr.Dataset) -> Figure:
    """Each unit's mean rate over all bins of all trials, sorted, labelled by NWB unit id,
    held-out units marked."""
    x = _activity(ds)
    m = x.mean(("trial", "time"), skipna=True).values
    order = np.argsort(m)[::-1]
    held = ds["heldout"].values.astype(bool) if "heldout" in ds.coords else np.zeros(m.size, bool)
    fig = _figure(6.0, 2.6)
    ax = fig.add_subplot()
    colors = np.where(held[order], "#d1495b", "#1b6ca8")
    ax.bar(np.arange(m.size), m[order], color=colors, width=0.9)
    unit_ticks(ax, ds["unit"].values[order], "x")
    ax.set_xlabel("unit (NWB id), sorted by mean")
    ax.set_ylabel(f"mean {_rate_label(ds)}")
    if held.any():
        from matplotlib.patches import Patch

        ax.legend(
            handles=[
                Patch(color="#1b6ca8", label="held-in"),
                Patch(color="#d1495b", label="held-out"),
            ],
            fontsize=8,
            frameon=False,
        )
    ax.set_title("mean rate per unit", fontsize=10)
    return fig


def plot_psths(ds: xr.Dataset, n_units: int = 3) -> Figure:
    """Condition-averaged PSTHs: population mean and the ``n_units`` highest-rate units."""
    x = _activity(ds)
    m = x.mean(("trial", "time"), skipna=True).values
    top = np.argsort(m)[::-1][:n_units]
    t = ds["time"].values
    means = _condition_means(x)
    fig = _figure(2.4 * (1 + len(top)) + 1.2, 2.6)
    axes = fig.subplots(1, 1 + len(top), squeeze=False)[0]
    for k, (label, mu) in enumerate(means):
        c = _COLORS[k % len(_COLORS)]
        axes[0].plot(t, mu.mean("unit", skipna=True).values, color=c, label=label)
        for ax, u in zip(axes[1:], top, strict=False):
            ax.plot(t, mu.isel(unit=u).values, color=c)
    axes[0].set_title("population mean", fontsize=9)
    for ax, u in zip(axes[1:], top, strict=False):
        ax.set_title(f"unit {ds['unit'].values[u]}", fontsize=9)
    for ax in axes:
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel(_rate_label(ds))
    if len(means) > 1:
        fig.legend(
            *axes[0].get_legend_handles_labels(),
            loc="outside right upper",
            fontsize=8,
            frameon=False,
        )
    return fig
