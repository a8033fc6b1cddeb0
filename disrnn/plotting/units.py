"""Unit-map figures from ``units.nc`` (:mod:`disrnn.evaluation.unit_maps`): which units
each latent group carries, and the area x group table as a heatmap."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from disrnn.plotting._base import _COLORS, _empty, _figure

#: at most this many unit ids are written under a unit axis (every k-th beyond)
MAX_UNIT_TICKS = 60


def unit_order(units: xr.Dataset) -> np.ndarray:
    """Unit positions: by dominant group (the groups in order, then the mixed units),
    within one by decreasing share of the unit's largest group."""
    share = np.nan_to_num(units["share"].values)
    labels = [str(g) for g in units["group"].values]
    dominant = np.asarray(units["dominant"].values).astype(str)
    block = np.array([labels.index(d) if d in labels else len(labels) for d in dominant])
    return np.lexsort((-share.max(1), block))


def unit_ticks(ax, ids, axis: str = "x", max_ticks: int = MAX_UNIT_TICKS) -> None:
    """Label a unit axis with NWB unit ids (every k-th when there are many)."""
    ids = np.asarray(ids)
    step = max(1, int(np.ceil(ids.size / max_ticks)))
    pos = np.arange(0, ids.size, step)
    size = 7 if ids.size <= 30 else 5
    if axis == "x":
        ax.set_xticks(pos, [str(i) for i in ids[pos]], rotation=90, fontsize=size)
    else:
        ax.set_yticks(pos, [str(i) for i in ids[pos]], fontsize=size)


def plot_unit_map(units: xr.Dataset | None) -> Figure:
    """Each unit's share of its predicted variance per group (top) and the norm of its
    column in each B_g (bottom), units by NWB id, sorted by dominant group (mixed units
    last; blocks named above); a strip above gives each unit's area when the dataset
    names more than one."""
    if units is None or "share" not in units:
        return _empty("no units.nc (an MLP decoder has no unit map)")
    order = unit_order(units)
    ids = units["unit"].values[order]
    groups = [str(g) for g in units["group"].values]
    area = np.asarray(units["area"].values).astype(str)[order] if "area" in units.coords else None
    names = list(dict.fromkeys(area.tolist())) if area is not None else []
    rows = [("share", 1.0)] + ([("drive", 1.0)] if np.isfinite(units["drive"]).any() else [])
    ratios = ([0.25] if len(names) > 1 else []) + [max(len(groups), 1) * 0.35] * len(rows)
    fig = _figure(min(max(5.5, 2.5 + 0.12 * ids.size), 16), 1.2 + sum(ratios) * 1.3)
    axes = fig.subplots(len(ratios), 1, sharex=True, height_ratios=ratios, squeeze=False)[:, 0]
    k = 0
    if len(names) > 1:
        idx = np.array([names.index(a) for a in area])
        cmap = _area_cmap(len(names))
        axes[0].imshow(idx[None, :], aspect="auto", cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5)
        axes[0].set_yticks([0], ["area"], fontsize=8)
        from matplotlib.patches import Patch

        handles = [Patch(color=cmap(i), label=n) for i, n in enumerate(names[:10])]
        axes[0].legend(
            handles=handles, loc="lower left", bbox_to_anchor=(1.01, 0), fontsize=7, frameon=False
        )
        k = 1
    for (name, _), ax in zip(rows, axes[k:], strict=True):
        vals = units[name].values[order].T  # (group, unit)
        vmax = 1.0 if name == "share" else (float(np.nanmax(vals)) or 1.0)
        im = ax.imshow(
            vals,
            aspect="auto",
            cmap="Blues" if name == "share" else "Oranges",
            vmin=0,
            vmax=vmax,
            interpolation="nearest",
        )
        ax.set_yticks(range(len(groups)), [f"group {g}" for g in groups], fontsize=8)
        label = "share of variance" if name == "share" else "drive ‖B_g col‖"
        fig.colorbar(im, ax=ax, shrink=0.9, pad=0.01).set_label(label, fontsize=7)
    _mark_groups(axes[k], np.asarray(units["dominant"].values).astype(str)[order])
    unit_ticks(axes[-1], ids)
    axes[-1].set_xlabel("unit (NWB id), sorted by dominant group")
    thr = units.attrs.get("dominant_share")
    if thr is not None:
        fig.suptitle(
            f"a unit belongs to the group carrying ≥ {float(thr):.2g} of its variance, "
            "else it is mixed",
            fontsize=8,
        )
    return fig


def _area_cmap(n: int):
    from matplotlib.colors import ListedColormap

    return ListedColormap([_COLORS[(i + 3) % len(_COLORS)] for i in range(max(n, 1))])


def _mark_groups(ax, dominant: np.ndarray) -> None:
    """Vertical lines between the blocks of units of one dominant group (or mixed), each
    block named above the share panel."""
    edges = np.flatnonzero(dominant[1:] != dominant[:-1]) + 1
    for pos in edges - 0.5:
        ax.axvline(pos, color="k", lw=0.8)
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [dominant.size]])
    for a, b in zip(starts, ends, strict=True):
        name = dominant[a] if dominant[a] == "mixed" else f"g{dominant[a]}"
        ax.text((a + b - 1) / 2, -0.6, name, ha="center", va="bottom", fontsize=7)


def plot_area_groups(units: xr.Dataset | None) -> Figure:
    """Area x group: the mean share of each group over the area's units, with the number
    of units per area (the area table of ``units.nc``)."""
    if units is None or "area_share" not in units:
        return _empty("no area table (the dataset names no brain areas)")
    share = units["area_share"].values
    names = [str(a) for a in units["brain_area"].values]
    n = units["area_units"].values
    groups = [str(g) for g in units["group"].values]
    fig = _figure(2.2 + 0.8 * len(groups), 1.0 + 0.35 * len(names))
    ax = fig.add_subplot()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(share.shape[0]):
        for j in range(share.shape[1]):
            v = share[i, j]
            ax.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color="w" if v > 0.6 else "k",
            )
    ax.set_xticks(range(len(groups)), [f"group {g}" for g in groups], fontsize=8)
    ax.set_yticks(
        range(len(names)), [f"{a} ({c} units)" for a, c in zip(names, n, strict=True)], fontsize=8
    )
    fig.colorbar(im, ax=ax, label="mean share over the area's units", shrink=0.9)
    return fig
