"""Shared helpers of :mod:`disrnn.plotting`: Agg figures, colours, dataset accessors."""

from __future__ import annotations

import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

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
