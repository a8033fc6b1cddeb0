"""Connectivity figures from ``connectivity.nc``: W, J and W_g heatmaps, eigenvalues."""

from __future__ import annotations

import re

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from disrnn.plotting._base import (
    _COLORS,
    _empty,
    _figure,
)


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
    """W (unit x unit), J (latent x latent) and each group's W_g as heatmaps on symmetric
    colour scales: one shared by the unit x unit matrices, another for J (whose weights
    are usually far larger); J's group blocks are outlined, unit axes carry NWB unit ids.
    When ``connectivity.nc`` holds the truth (``true_W``, ``true_W_g``), a second row
    shows it on the unit x unit scale, each true group under the fitted group matched to it."""
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
    scales = _scales(top + [p for p in truth if p is not None])
    ids = conn["post"].values if "post" in conn.coords else None
    nrow = 2 if truth else 1
    fig = _figure(2.2 * len(top) + 0.9, 2.5 * nrow + 0.1)
    axes = fig.subplots(nrow, len(top), squeeze=False)
    ims: dict[str, tuple] = {}  # scale -> (image, axes)
    for row, items in enumerate([top, truth][:nrow]):
        for col in range(len(top)):
            ax = axes[row, col]
            item = items[col] if col < len(items) else None
            if item is None:
                ax.axis("off")
                continue
            title, m = item
            kind = "latent" if title == "J" else "unit"
            v = scales[kind]
            im = ax.imshow(m, cmap="RdBu_r", vmin=-v, vmax=v, interpolation="nearest")
            ims.setdefault(kind, (im, []))[1].append(ax)
            ax.set_title(title, fontsize=9)
            _matrix_ticks(ax, kind, ids if kind == "unit" and ids is not None else None)
            if title == "J" and groups is not None and groups.size == m.shape[0]:
                for g in dict.fromkeys(groups.tolist()):
                    idx = np.flatnonzero(groups == g)
                    lo, hi = idx.min() - 0.5, idx.max() + 0.5
                    ax.plot([lo, hi, hi, lo, lo], [lo, lo, hi, hi, lo], color="k", lw=1)
    for kind, (im, axs) in ims.items():
        label = "J weight (latent × latent)" if kind == "latent" else "weight (unit × unit, shared)"
        fig.colorbar(im, ax=axs, shrink=0.8, label=label)
    return fig


def _scales(mats: list[tuple[str, np.ndarray]]) -> dict[str, float]:
    """Symmetric colour limits: one shared by the N x N matrices (W, W_g and their
    truth), another for the K x K J, so W's small weights are not drawn on J's scale."""
    out = {}
    for kind in ("unit", "latent"):
        vals = [m for t, m in mats if (t == "J") == (kind == "latent") and m.size]
        out[kind] = max((float(np.nanmax(np.abs(m))) for m in vals), default=0.0) or 1.0
    return out


def _matrix_ticks(ax, kind: str, ids) -> None:
    """Unit axes labelled by NWB unit id (a few), latent axes unlabelled."""
    if ids is None:
        ax.set_xticks([])
        ax.set_yticks([])
        return
    from disrnn.plotting.units import unit_ticks

    unit_ticks(ax, ids, "x", max_ticks=6)
    unit_ticks(ax, ids, "y", max_ticks=6)


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
