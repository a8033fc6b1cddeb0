"""Per-method figures of one fit: loss curves, latents (alone and against the truth),
predicted against observed activity."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from disrnn.plotting._base import (
    _COLORS,
    _activity,
    _condition_means,
    _empty,
    _figure,
    _is_spikes,
    _rate_label,
    _split,
)


def plot_loss_curves(losses) -> Figure:
    """Loss terms against epoch, one panel per term, one line per split.

    Args:
        losses: DataFrame of ``losses.csv``: columns ``epoch``, ``split`` and one column
            per loss term (long format). A wide frame (``train_loss``, ``val_loss``...)
            without ``split`` is also accepted.
    """
    if losses is None or len(losses) == 0:
        return _empty("no losses.csv in the fit folder")
    df = losses.copy()
    if "split" not in df.columns:
        df["split"] = "train"
    x = "epoch" if "epoch" in df.columns else None
    terms = [
        c
        for c in df.columns
        if c not in ("epoch", "split", "step", "time", "seconds", "lr")
        and np.issubdtype(df[c].dtype, np.number)
        and df[c].notna().any()
    ]
    first = ["total", "loss", "nll", "kl", "pc", "bd"]
    terms = sorted(terms, key=lambda c: (first.index(c) if c in first else len(first), c))[:6]
    if not terms:
        return _empty("losses.csv holds no loss terms")
    fig = _figure(min(2.5 * len(terms) + 0.5, 13), 2.5)
    axes = fig.subplots(1, len(terms), squeeze=False)[0]
    for k, split in enumerate(dict.fromkeys(df["split"].astype(str))):
        sub = df[df["split"].astype(str) == split]
        for ax, term in zip(axes, terms, strict=False):
            xs = sub[x].values if x else np.arange(len(sub))
            ax.plot(xs, sub[term].values, color=_COLORS[k % len(_COLORS)], label=split, lw=1.2)
    for ax, term in zip(axes, terms, strict=False):
        ax.set_title(term, fontsize=9)
        ax.set_xlabel("epoch")
        vals = df[term].values.astype(float)
        if (
            np.all(vals[np.isfinite(vals)] > 0)
            and np.nanmax(vals) / max(np.nanmin(vals), 1e-12) > 100
        ):
            ax.set_yscale("log")
    axes[0].legend(fontsize=8, frameon=False)
    return fig


def _groups(latents: xr.DataArray) -> list[tuple[int, np.ndarray]]:
    if "latent_group" in latents.coords:
        g = np.asarray(latents["latent_group"].values)
        return [(int(v), np.flatnonzero(g == v)) for v in dict.fromkeys(g.tolist())]
    return [(0, np.arange(latents.sizes["latent"]))]


def plot_latents(
    latents: xr.DataArray,
    condition: xr.DataArray | None = None,
    n_single: int = 4,
    max_groups: int = 6,
) -> Figure:
    """Inferred latents by group: condition averages (left) and single trials (right).

    Args:
        latents: (trial, time, latent) posterior means with coords ``latent_group``
            (int, on ``latent``) and ``split`` (on ``trial``); NaN in history bins.
        condition: (trial,) condition labels, used when ``latents`` lacks the coordinate.
        n_single: single test trials drawn per group.

    Left: for groups of two or more latents the condition-averaged trajectory in the
    plane of the group's first two latents; for one-latent groups its time course.
    Right: time courses of every latent of the group on ``n_single`` test trials.
    """
    if latents is None:
        return _empty("no latents.nc in the evaluation folder")
    lat = latents
    if condition is not None and "condition" not in lat.coords:
        cond = condition.reindex(trial=lat["trial"]) if "trial" in condition.dims else condition
        lat = lat.assign_coords(condition=("trial", np.asarray(cond.values)))
    test = _split(lat)
    groups = _groups(lat)
    shown = groups[:max_groups]
    t = lat["time"].values
    means = _condition_means(test)
    per_row = 2 if len(shown) > 3 else 1  # many small groups (DisRNN-full): two per row
    nrow = int(np.ceil(len(shown) / per_row))
    fig = _figure(8.0 * per_row, 2.2 * nrow + 0.4)
    grid = fig.subplots(nrow, 2 * per_row, squeeze=False)
    axes = grid.reshape(nrow * per_row, 2)
    for ax in axes[len(shown) :].ravel():
        ax.axis("off")
    singles = list(range(min(n_single, test.sizes["trial"])))
    for row, (g, idx) in enumerate(shown):
        ax0, ax1 = axes[row]
        _plot_group_means(ax0, means, idx, t, g)
        _plot_group_singles(ax1, test, idx, t, singles, g)
    if len(means) > 1:
        fig.legend(
            *axes[0, 0].get_legend_handles_labels(),
            loc="outside lower center",
            ncol=min(len(means), 6),
            fontsize=8,
            frameon=False,
        )
    if len(groups) > len(shown):
        fig.suptitle(f"first {len(shown)} of {len(groups)} groups", fontsize=9)
    return fig


def _plot_group_means(ax, means, idx: np.ndarray, t: np.ndarray, g) -> None:
    """Condition averages of group ``g`` (latents ``idx``): the trajectory in the plane of
    its first two latents (start marked), or the time course of a one-latent group."""
    for k, (label, mu) in enumerate(means):
        c = _COLORS[k % len(_COLORS)]
        if idx.size >= 2:
            a, b = mu.isel(latent=idx[0]).values, mu.isel(latent=idx[1]).values
            ax.plot(a, b, color=c, label=label, lw=1.2)
            ok = np.isfinite(a) & np.isfinite(b)
            if ok.any():
                j = np.flatnonzero(ok)[0]
                ax.plot(a[j], b[j], "o", color=c, ms=3)
        else:
            ax.plot(t, mu.isel(latent=idx[0]).values, color=c, label=label, lw=1.2)
    if idx.size >= 2:
        ax.set_xlabel(f"latent {idx[0]}")
        ax.set_ylabel(f"latent {idx[1]}")
    else:
        ax.set_xlabel("time (s)")
        ax.set_ylabel(f"latent {idx[0]}")
    ax.set_title(f"group {g}: condition average ({idx.size} latents)", fontsize=9)


def _plot_group_singles(ax, test, idx: np.ndarray, t: np.ndarray, singles: list, g) -> None:
    """Time courses of (up to six of) group ``g``'s latents on the test trials ``singles``."""
    for d, li in enumerate(idx[:6]):
        c = _COLORS[d % len(_COLORS)]
        for s in singles:
            ax.plot(
                t,
                test.isel(trial=s, latent=li).values,
                color=c,
                alpha=0.75,
                lw=0.9,
                label=f"latent {li}" if s == 0 else None,
            )
    ax.set_title(f"group {g}: {len(singles)} single test trials", fontsize=9)
    ax.set_xlabel("time (s)")
    ax.legend(fontsize=7, frameon=False, loc="upper right")


def plot_latents_vs_truth(latents: xr.Dataset | None, n_trials: int = 2) -> Figure:
    """Aligned inferred latents against the true latents on test trials (simulations).

    Args:
        latents: ``latents.nc`` with ``true_latents`` and ``aligned_latents`` (trial,
            time, true_latent) and coord ``true_latent_group``: the inferred latents
            mapped onto the truth by the evaluation's matched groupwise affine maps.

    One row per true group, one column per test trial; truth solid, aligned dashed.
    """
    if latents is None or "aligned_latents" not in latents or "true_latents" not in latents:
        return _empty("no ground truth for this session")
    test = _split(latents)
    true, al = test["true_latents"], test["aligned_latents"]
    tdim = true.dims[2]
    groups = (
        np.asarray(true[f"{tdim}_group"].values)
        if f"{tdim}_group" in true.coords
        else np.zeros(true.sizes[tdim], int)
    )
    glabels = list(dict.fromkeys(groups.tolist()))[:6]
    trials = list(range(min(n_trials, test.sizes["trial"])))
    t = test["time"].values
    fig = _figure(3.6 * len(trials) + 1.0, 2.0 * len(glabels) + 0.4)
    axes = fig.subplots(len(glabels), len(trials), squeeze=False, sharex=True)
    for r, g in enumerate(glabels):
        idx = np.flatnonzero(groups == g)
        for c, i in enumerate(trials):
            ax = axes[r, c]
            for d, li in enumerate(idx[:5]):
                col = _COLORS[d % len(_COLORS)]
                ax.plot(t, true.isel(trial=i, **{tdim: li}).values, color=col, lw=1.3)
                ax.plot(t, al.isel(trial=i, **{tdim: li}).values, color=col, lw=1.3, ls="--")
            ax.set_title(f"true group {g}, trial {test['trial'].values[i]}", fontsize=9)
        axes[r, 0].set_ylabel("latent")
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    fig.suptitle("truth (solid) and aligned inferred latents (dashed)", fontsize=9)
    return fig


def _units_of(ds: xr.Dataset, predicted: xr.DataArray) -> xr.Dataset:
    """``ds`` restricted to the units ``predicted`` covers, in its order."""
    if "unit" not in predicted.coords:
        if predicted.sizes["unit"] != ds.sizes["unit"]:
            raise ValueError(
                f"predicted rates of {predicted.sizes['unit']} units without unit ids cannot "
                f"be matched to the dataset's {ds.sizes['unit']} units; save them with a "
                "unit coord"
            )
        return ds
    missing = np.setdiff1d(predicted["unit"].values, ds["unit"].values)
    if missing.size:
        raise ValueError(
            f"predicted rates name units {missing.tolist()} that the dataset lacks; "
            "were they computed from another dataset?"
        )
    return ds.sel(unit=predicted["unit"].values)


def plot_predicted_vs_observed(
    ds: xr.Dataset, predicted: xr.DataArray | None, n_units: int = 3
) -> Figure:
    """One-step-ahead predictions against the data on the test trials.

    Left: each unit's condition-averaged PSTH bins, predicted against observed
    (held-in and held-out units coloured apart), with the identity line. Right: observed
    (solid) and predicted (dashed) PSTHs of the ``n_units`` highest-rate units.

    Args:
        ds: the session dataset.
        predicted: (trial, time, unit) predicted mean activity per bin (expected
            counts for spikes; converted to Hz here), NaN in history bins; of every unit
            or, with a ``unit`` coord, of some (a reference's held-out units): those are
            drawn against the same units' data.

    Raises:
        ValueError: ``predicted`` names units the dataset lacks, or has no ``unit``
            coord and another number of units than ``ds``.
    """
    if predicted is None:
        return _empty("the evaluation folder holds no predicted rates")
    trials = np.intersect1d(predicted["trial"].values, ds["trial"].values)
    sub = _split(_units_of(ds.sel(trial=trials), predicted))
    obs = _activity(sub)
    pred = predicted.sel(trial=sub["trial"].values).astype(float)
    pred = pred.assign_coords({k: sub[k] for k in ("condition",) if k in sub.coords})
    if _is_spikes(ds):
        pred = pred / float(ds.attrs.get("bin_width", 1.0) or 1.0)
    pred = pred.where(np.isfinite(obs.values))
    held = (
        sub["heldout"].values.astype(bool)
        if "heldout" in sub.coords
        else np.zeros(sub.sizes["unit"], bool)
    )
    om = dict(_condition_means(obs))
    pm = dict(_condition_means(pred))
    o_all = np.stack([om[k].values for k in om])  # (condition, time, unit)
    p_all = np.stack([pm[k].values for k in om])
    fig = _figure(9.0, 3.0)
    gs = fig.add_gridspec(1, 1 + n_units, width_ratios=[1.4] + [1] * n_units)
    ax = fig.add_subplot(gs[0])
    for mask_, c, lab in ((~held, "#1b6ca8", "held-in"), (held, "#d1495b", "held-out")):
        if mask_.any():
            ax.scatter(
                o_all[..., mask_].ravel(),
                p_all[..., mask_].ravel(),
                s=3,
                alpha=0.4,
                color=c,
                label=lab,
            )
    finite = np.isfinite(o_all) & np.isfinite(p_all)
    if finite.any():
        lo = min(o_all[finite].min(), p_all[finite].min())
        hi = max(o_all[finite].max(), p_all[finite].max())
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
        r = np.corrcoef(o_all[finite], p_all[finite])[0, 1] if finite.sum() > 2 else np.nan
        ax.set_title(f"PSTH bins, r = {r:.3f}", fontsize=9)
    ax.set_xlabel(f"observed {_rate_label(ds)}")
    ax.set_ylabel("predicted")
    ax.legend(fontsize=7, frameon=False, markerscale=3)
    top = np.argsort(np.nanmean(o_all, axis=(0, 1)))[::-1][:n_units]
    t = sub["time"].values
    for j, u in enumerate(top):
        a = fig.add_subplot(gs[1 + j])
        for k, key in enumerate(list(om)[:6]):
            c = _COLORS[k % len(_COLORS)]
            a.plot(t, om[key].isel(unit=u).values, color=c, lw=1.1)
            a.plot(t, pm[key].isel(unit=u).values, color=c, lw=1.1, ls="--")
        tag = " (held-out)" if held[u] else ""
        a.set_title(f"unit {sub['unit'].values[u]}{tag}", fontsize=9)
        a.set_xlabel("time (s)")
    return fig
