"""Figures from saved results only (datasets, evaluation folders, fit folders).

Every function takes arrays that the pipeline saved (an ``xarray.Dataset`` with dims
``(trial, time, unit)``, the DataArrays of an evaluation folder, a ``losses.csv`` frame)
and returns a :class:`matplotlib.figure.Figure`. Figures are built without pyplot, each on
its own Agg canvas: no global state and no change to the caller's matplotlib backend, so
they are safe in workers, Snakemake scripts and notebooks::

    from disrnn import plotting
    from disrnn.report.results import load_eval
    r = load_eval("results/sim_a/evals/DisRNN/seed0")
    plotting.plot_connectivity(r.connectivity).savefig("conn.png")

Nothing here fits or evaluates a model.
"""

from __future__ import annotations

import re

import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = [
    "plot_rasters",
    "plot_mean_rates",
    "plot_psths",
    "plot_loss_curves",
    "plot_latents",
    "plot_latents_vs_truth",
    "plot_predicted_vs_observed",
    "plot_connectivity",
    "plot_eigenvalues",
    "plot_rollout",
    "plot_metric_comparison",
    "plot_paired_differences",
]

_COLORS = [
    "#1b6ca8",
    "#d1495b",
    "#2e933c",
    "#edae49",
    "#6a4c93",
    "#00798c",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#17becf",
]


def _figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), layout="constrained", dpi=90)
    FigureCanvasAgg(fig)
    return fig


def _empty(message: str, w: float = 5, h: float = 1.2) -> Figure:
    fig = _figure(w, h)
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=10, color="#555")
    return fig


# ------------------------------------------------------------------------- dataset helpers
def _is_spikes(ds: xr.Dataset) -> bool:
    kind = ds["activity"].attrs.get("kind", ds.attrs.get("kind", "spike_counts"))
    return kind != "continuous"


def _activity(ds: xr.Dataset) -> xr.DataArray:
    """(trial, time, unit) float activity with masked bins as NaN; Hz for spike counts."""
    x = ds["activity"].astype(float)
    if "mask" in ds:
        x = x.where(ds["mask"])
    if _is_spikes(ds):
        x = x / float(ds.attrs.get("bin_width", 1.0) or 1.0)
    return x


def _rate_label(ds: xr.Dataset) -> str:
    return "rate (Hz)" if _is_spikes(ds) else "activity"


def _split(obj, split: str = "test"):
    """The ``split`` trials of ``obj`` (all trials when the coordinate is absent or the
    split is empty)."""
    if "split" in obj.coords and "trial" in obj.dims:
        sel = obj.sel(trial=(obj["split"] == split).values)
        if sel.sizes["trial"] > 0:
            return sel
    return obj


def _conditions(obj) -> list:
    if "condition" in obj.coords and "trial" in obj["condition"].dims:
        vals = list(dict.fromkeys(obj["condition"].values.tolist()))
        return vals
    return []


def _condition_means(da: xr.DataArray, max_conditions: int = 8) -> list[tuple[str, xr.DataArray]]:
    """[(label, trial-averaged DataArray)] per condition (or one 'all trials' entry)."""
    conds = _conditions(da)[:max_conditions]
    if not conds:
        return [("all trials", da.mean("trial", skipna=True))]
    out = []
    for c in conds:
        sub = da.sel(trial=(da["condition"] == c).values)
        out.append((str(c), sub.mean("trial", skipna=True)))
    return out


# -------------------------------------------------------------------------- data overview
def plot_rasters(ds: xr.Dataset, n_trials: int = 4) -> Figure:
    """Spike counts (or activity) of example test trials, one panel per trial.

    The first test trial of each condition is shown (up to ``n_trials``); units are
    ordered held-in first, held-out last (marked by a line).
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
    axes[0].set_ylabel("unit (held-out above red line)" if n_heldin < len(order) else "unit")
    axes[0].yaxis.set_major_locator(MaxNLocator(integer=True))
    if im is not None:
        fig.colorbar(im, ax=list(axes), label=_rate_label(ds), shrink=0.8)
    return fig


def plot_mean_rates(ds: xr.Dataset) -> Figure:
    """Each unit's mean rate over all bins of all trials, sorted, held-out units marked."""
    x = _activity(ds)
    m = x.mean(("trial", "time"), skipna=True).values
    order = np.argsort(m)[::-1]
    held = ds["heldout"].values.astype(bool) if "heldout" in ds.coords else np.zeros(m.size, bool)
    fig = _figure(6.0, 2.6)
    ax = fig.add_subplot()
    colors = np.where(held[order], "#d1495b", "#1b6ca8")
    ax.bar(np.arange(m.size), m[order], color=colors, width=0.9)
    ax.set_xlabel("unit (sorted by mean)")
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


# --------------------------------------------------------------------------- per method
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
        for k, (label, mu) in enumerate(means):
            c = _COLORS[k % len(_COLORS)]
            if idx.size >= 2:
                a, b = mu.isel(latent=idx[0]).values, mu.isel(latent=idx[1]).values
                ax0.plot(a, b, color=c, label=label, lw=1.2)
                ok = np.isfinite(a) & np.isfinite(b)
                if ok.any():
                    j = np.flatnonzero(ok)[0]
                    ax0.plot(a[j], b[j], "o", color=c, ms=3)
            else:
                ax0.plot(t, mu.isel(latent=idx[0]).values, color=c, label=label, lw=1.2)
        if idx.size >= 2:
            ax0.set_xlabel(f"latent {idx[0]}")
            ax0.set_ylabel(f"latent {idx[1]}")
        else:
            ax0.set_xlabel("time (s)")
            ax0.set_ylabel(f"latent {idx[0]}")
        ax0.set_title(f"group {g}: condition average ({idx.size} latents)", fontsize=9)
        for d, li in enumerate(idx[:6]):
            c = _COLORS[d % len(_COLORS)]
            for s in singles:
                ax1.plot(
                    t,
                    test.isel(trial=s, latent=li).values,
                    color=c,
                    alpha=0.75,
                    lw=0.9,
                    label=f"latent {li}" if s == 0 else None,
                )
        ax1.set_title(f"group {g}: {len(singles)} single test trials", fontsize=9)
        ax1.set_xlabel("time (s)")
        ax1.legend(fontsize=7, frameon=False, loc="upper right")
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
            counts for spikes; converted to Hz here), NaN in history bins.
    """
    if predicted is None:
        return _empty("the evaluation folder holds no predicted rates")
    trials = np.intersect1d(predicted["trial"].values, ds["trial"].values)
    sub = _split(ds.sel(trial=trials))
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


def _connectivity_parts(conn: xr.Dataset) -> tuple[list[tuple[str, np.ndarray]], np.ndarray | None]:
    """[(title, matrix)] for W, J and each W_g, and J's latent_group (or None)."""
    mats: list[tuple[str, np.ndarray]] = []
    groups = None
    for name in ("W", "J"):
        if name in conn:
            mats.append((name, np.asarray(conn[name].values, dtype=float)))
            if name == "J":
                for c in conn[name].coords.values():
                    if c.name.startswith("latent_group") and c.ndim == 1:
                        groups = np.asarray(c.values)
    for name in sorted(conn.data_vars):
        da = conn[name]
        if name in ("W", "J"):
            continue
        if re.fullmatch(r"W_?g(roups?)?", name) and da.ndim == 3:
            gdim = da.dims[0]
            labels = da[gdim].values if gdim in da.coords else range(da.sizes[gdim])
            for i, g in enumerate(labels):
                mats.append((f"W_{g}", np.asarray(da.isel({gdim: i}).values, dtype=float)))
        elif re.fullmatch(r"W_?g?_?\d+", name) and da.ndim == 2:
            mats.append((name, np.asarray(da.values, dtype=float)))
    if groups is None and "latent_group" in conn.coords and conn["latent_group"].ndim == 1:
        groups = np.asarray(conn["latent_group"].values)
    return mats, groups


def plot_connectivity(conn: xr.Dataset | None, max_groups: int = 6) -> Figure:
    """W (unit x unit), J (latent x latent) and each group's W_g as heatmaps on one
    shared, symmetric colour scale; J's group blocks are outlined. When
    ``connectivity.nc`` holds the truth (``true_W``, ``true_W_g``), a second row shows
    it on the same scale, each true group under the fitted group matched to it."""
    if conn is None:
        return _empty("no connectivity.nc (or an MLP variant, which has none)")
    mats, groups = _connectivity_parts(conn)
    if not mats:
        return _empty("connectivity.nc holds no W or J")
    head = [m for m in mats if not m[0].startswith("W_")]
    gmats = [m for m in mats if m[0].startswith("W_")][:max_groups]
    top = head + gmats
    truth: list[tuple[str, np.ndarray] | None] = []
    if "true_W" in conn:
        truth = [("true W", np.asarray(conn["true_W"].values, float))]
        truth += [None] * (len(head) - 1)
        if "true_W_g" in conn:
            tg = conn["true_W_g"]
            tlabels = (
                list(np.asarray(tg["true_group"].values))
                if "true_group" in tg.coords
                else list(range(tg.sizes[tg.dims[0]]))
            )
            matched = (
                list(np.asarray(conn["matched_group"].values))
                if "matched_group" in conn.coords
                else tlabels
            )
            for i in range(len(gmats)):
                t = matched[i] if i < len(matched) else -1
                if t in tlabels:
                    truth.append(
                        (
                            f"true W_{t}",
                            np.asarray(tg.isel({tg.dims[0]: tlabels.index(t)}).values, float),
                        )
                    )
                else:
                    truth.append(None)
    allm = [m for _, m in top] + [p[1] for p in truth if p is not None]
    vmax = max(float(np.nanmax(np.abs(m))) for m in allm if m.size) or 1.0
    nrow = 2 if truth else 1
    fig = _figure(2.2 * len(top) + 0.9, 2.5 * nrow + 0.1)
    axes = fig.subplots(nrow, len(top), squeeze=False)
    im = None
    for row, items in enumerate([top, truth][:nrow]):
        for col in range(len(top)):
            ax = axes[row, col]
            item = items[col] if col < len(items) else None
            if item is None:
                ax.axis("off")
                continue
            title, m = item
            im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            if title == "J" and groups is not None and groups.size == m.shape[0]:
                for g in dict.fromkeys(groups.tolist()):
                    idx = np.flatnonzero(groups == g)
                    lo, hi = idx.min() - 0.5, idx.max() + 0.5
                    ax.plot([lo, hi, hi, lo, lo], [lo, lo, hi, hi, lo], color="k", lw=1)
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="weight (shared scale)")
    return fig


def _eigen_sets(conn: xr.Dataset) -> list[tuple[str, np.ndarray]]:
    """[(label, complex eigenvalues)] from ``connectivity.nc``.

    Reads ``<name>_real``/``<name>_imag`` pairs (NetCDF has no complex type) or complex
    variables whose name contains ``eig``; a pair whose dim carries a ``*_group``
    coordinate (``block_eig_group``) is split into one set per group.
    """
    out = []
    for n in conn.data_vars:
        if "eig" not in n.lower() or n.endswith(("_imag", "_im")):
            continue
        da = conn[n]
        if np.iscomplexobj(da.values):
            base, vals = n, np.asarray(da.values)
        elif n.endswith(("_real", "_re")):
            base = re.sub(r"_(real|re)$", "", n)
            imag = next(
                (f"{base}{suf}" for suf in ("_imag", "_im") if f"{base}{suf}" in conn), None
            )
            vals = np.asarray(da.values) + 1j * (np.asarray(conn[imag].values) if imag else 0.0)
        else:
            base, vals = n, np.asarray(da.values).astype(complex)
        label = base.replace("_eigenvalues", "").replace("_eigvals", "").replace("_eig", "")
        label = {"J": "J", "block": "block", "true_J": "true J"}.get(label, label)
        gcoord = next(
            (c for c in da.coords.values() if c.name.endswith("_group") and c.dims == da.dims[-1:]),
            None,
        )
        if gcoord is not None and vals.ndim == 1:
            g = np.asarray(gcoord.values)
            for v in dict.fromkeys(g.tolist()):
                out.append((f"J block of group {v}", vals[g == v]))
        elif vals.ndim == 2:
            for i in range(vals.shape[0]):
                out.append((f"{label} {i}", vals[i][np.isfinite(vals[i])]))
        else:
            out.append((f"eig {label}", vals[np.isfinite(vals)]))
    # J first, then blocks, then the truth
    out.sort(key=lambda p: (not p[0].endswith(" J"), "true" in p[0]))
    return out


def plot_eigenvalues(conn: xr.Dataset | None) -> Figure:
    """Eigenvalues of J and of each group's block in the complex plane (unit circle
    for reference; a linear rollout grows along eigenvalues outside it)."""
    if conn is None:
        return _empty("no connectivity.nc")
    sets = _eigen_sets(conn)
    if not sets and "J" in conn:
        sets = [("eig J (computed from J)", np.linalg.eigvals(np.asarray(conn["J"].values, float)))]
    if not sets:
        return _empty("connectivity.nc holds no eigenvalues")
    fig = _figure(4.6, 3.4)
    ax = fig.add_subplot()
    th = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(th), np.sin(th), color="#999", lw=0.8, ls=":")
    markers = "osD^v<>ph*"
    for k, (label, v) in enumerate(sets[:10]):
        ax.scatter(
            v.real,
            v.imag,
            s=28 if k == 0 else 16,
            marker=markers[k % len(markers)],
            facecolor="none" if k == 0 else _COLORS[k % len(_COLORS)],
            edgecolor=_COLORS[k % len(_COLORS)],
            label=label,
        )
    ax.axhline(0, color="#ccc", lw=0.6)
    ax.axvline(0, color="#ccc", lw=0.6)
    ax.set_xlabel("real")
    ax.set_ylabel("imaginary")
    ax.set_aspect("equal", adjustable="datalim")
    fig.legend(loc="outside right upper", fontsize=7, frameon=False)
    return fig


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
    kstep = None
    if isinstance(rollout, xr.Dataset):
        kstep = {n: rollout[n] for n in ("kstep_r2", "kstep_bps") if n in rollout.data_vars}
        names = [
            n
            for n in ("rollout_sample", "rollout_mean", "rollout", "rates")
            if n in rollout.data_vars
        ]
        cands = [rollout[n] for n in names] or [
            v for v in rollout.data_vars.values() if tuple(v.dims) == ("trial", "time", "unit")
        ]
        if not cands:
            return _empty("rollout.nc holds no (trial, time, unit) rollout")
        roll = cands[0]
    else:
        roll = rollout
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
        for k, (name, da) in enumerate(kstep.items()):
            h = (
                da[da.dims[0]].values
                if da.dims and da.dims[0] in da.coords
                else np.arange(1, da.size + 1)
            )
            axes[3].plot(
                h, da.values, "o-", ms=3, color=_COLORS[k], label=name.replace("kstep_", "")
            )
        axes[3].set_xlabel("steps ahead k")
        axes[3].set_title("k-step-ahead prediction", fontsize=9)
        axes[3].legend(fontsize=8, frameon=False)
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


def _identity(ax, a, b) -> None:
    both = np.concatenate([np.ravel(a), np.ravel(b)])
    both = both[np.isfinite(both)]
    if both.size:
        lo, hi = both.min(), both.max()
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)


# ------------------------------------------------------------------------------ metrics
def plot_metric_comparison(
    table, metrics: list[tuple[str, str]], reference: str = "DisRNN"
) -> Figure:
    """Key metrics by method: one panel per metric, one point per seed, sessions apart.

    Args:
        table: long DataFrame with columns ``session``, ``method``, ``seed`` and one
            column per metric key.
        metrics: ``[(label, column)]`` to show.
    """
    if table is None or len(table) == 0 or not metrics:
        return _empty("no metrics to compare")
    methods = _method_order(table["method"].unique(), reference)
    sessions = list(dict.fromkeys(table["session"]))
    n = len(metrics)
    ncol = min(n, 3)
    nrow = int(np.ceil(n / ncol))
    fig = _figure(4.0 * ncol + 1.5, 2.9 * nrow)
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    width = 0.7 / max(len(sessions), 1)
    for ax, (label, col) in zip(axes, metrics, strict=False):
        for s_i, sess in enumerate(sessions):
            c = _COLORS[s_i % len(_COLORS)]
            for m_i, meth in enumerate(methods):
                vals = (
                    table[(table["session"] == sess) & (table["method"] == meth)][col]
                    .astype(float)
                    .dropna()
                    .values
                )
                if vals.size == 0:
                    continue
                x = m_i - 0.35 + width * (s_i + 0.5)
                ax.scatter(
                    np.full(vals.size, x),
                    vals,
                    s=12,
                    color=c,
                    alpha=0.8,
                    label=sess
                    if m_i == 0
                    or (ax is axes[0] and not ax.get_legend_handles_labels()[1].count(sess))
                    else None,
                )
                ax.hlines(vals.mean(), x - width * 0.4, x + width * 0.4, color=c, lw=2)
        ax.set_xlim(-0.6, len(methods) - 0.4)
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels(methods, rotation=35, ha="right", fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", color="#eee")
    for ax in axes[n:]:
        ax.axis("off")
    handles, labels = axes[0].get_legend_handles_labels()
    uniq = dict(zip(labels, handles, strict=False))
    if len(sessions) > 1:
        fig.legend(
            uniq.values(),
            uniq.keys(),
            loc="outside right upper",
            fontsize=8,
            frameon=False,
            title="session",
        )
    return fig


def plot_paired_differences(
    table, metrics: list[tuple[str, str]], reference: str = "DisRNN"
) -> Figure:
    """Per-seed difference of each method to ``reference`` (same session and seed),
    one panel per metric; a point per seed, the bar the mean."""
    if table is None or len(table) == 0 or not metrics or reference not in set(table["method"]):
        return _empty(f"no {reference} runs to pair against")
    ref = table[table["method"] == reference].set_index(["session", "seed"])
    methods = [m for m in _method_order(table["method"].unique(), reference) if m != reference]
    n = len(metrics)
    ncol = min(n, 3)
    nrow = int(np.ceil(n / ncol))
    fig = _figure(4.0 * ncol + 0.5, 2.9 * nrow)
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.axis("off")
    for ax, (label, col) in zip(axes, metrics, strict=False):
        ax.set_xlim(-0.6, len(methods) - 0.4)
        for m_i, meth in enumerate(methods):
            sub = table[table["method"] == meth].set_index(["session", "seed"])
            idx = sub.index.intersection(ref.index)
            d = (sub.loc[idx, col].astype(float) - ref.loc[idx, col].astype(float)).dropna().values
            if d.size == 0:
                continue
            ax.scatter(np.full(d.size, m_i), d, s=12, color=_COLORS[m_i % len(_COLORS)])
            ax.hlines(d.mean(), m_i - 0.3, m_i + 0.3, color="k", lw=1.5)
        ax.axhline(0, color="#888", lw=0.8)
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels(methods, rotation=35, ha="right", fontsize=8)
        ax.set_title(f"{label}: method − {reference}", fontsize=9)
    return fig


def _method_order(methods, reference: str = "DisRNN") -> list[str]:
    known = ["DisRNN", "DisRNN-full", "DisRNN-MLP", "bdRNN", "lrRNN", "lrRNN+ICA", "LINT"]
    methods = list(methods)
    ordered = [m for m in known if m in methods] + sorted(m for m in methods if m not in known)
    if reference in ordered:
        ordered.remove(reference)
        ordered.insert(0, reference)
    return ordered
