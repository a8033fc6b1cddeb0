"""Per-unit rescaling of binned spike counts into [0, 1] (``BinConfig.rescale``).

``"unit-max"``: each unit's counts are divided by its largest count over the window bins
(``activity``) of the train trials, so train values lie in [0, 1] and val/test values
may exceed 1 (no information from held-out trials enters the scale). Masked bins hold 0
and do not change the maximum. A unit with no spike in the train windows keeps scale 1.
The divisor is stored as the unit coord ``scale``: ``counts = activity * scale``.
"""

from __future__ import annotations

import logging

import numpy as np
import xarray as xr

log = logging.getLogger(__name__)

#: the variables on the activity's scale that are divided along with it
_SCALED = ("activity", "pre_activity", "true_rates")


def rescale_unit_max(ds: xr.Dataset) -> xr.Dataset:
    """A copy of ``ds`` with counts divided per unit by their train-window maximum.

    Args:
        ds: a binned dataset with ``activity`` (trial, time, unit) int32 spike counts and
            the ``split`` trial coord.

    Returns:
        A new dataset: ``activity`` (and ``pre_activity``) float32 = counts / scale with
        attrs ``kind="continuous"``, ``true_rates`` (simulated files) divided likewise;
        unit coord ``scale`` (unit,) float64 counts per unit of activity; attrs
        ``kind="continuous"``, ``rescale="unit-max"``, ``rescale_trials`` (the trials the
        maximum is taken over: ``"train"``, or ``"all"`` when no trial is in train).

    Raises:
        ValueError: ``activity`` is not spike counts, or ``scale`` is already a coord.
    """
    if ds["activity"].attrs.get("kind") != "spike_counts":
        raise ValueError(
            "rescale 'unit-max' divides spike counts; this dataset's activity is "
            f"{ds['activity'].attrs.get('kind')!r}"
        )
    if "scale" in ds.variables:
        raise ValueError("the dataset already has a 'scale' variable; it is rescaled already")
    train = ds["split"].values == "train"
    which = "train"
    if not train.any():
        log.warning("no train trial: rescale 'unit-max' takes each unit's maximum over all trials")
        train, which = np.ones_like(train), "all"
    peak = ds["activity"].values[train].max(axis=(0, 1)).astype(np.float64)  # (unit,)
    scale = np.where(peak > 0, peak, 1.0)
    out = ds.copy()
    for name in _SCALED:
        if name not in out:
            continue
        var = out[name]
        values = var.values / scale  # unit is the last dim of each
        dtype = np.float32 if name != "true_rates" else var.dtype
        attrs = dict(var.attrs)
        if "kind" in attrs:
            attrs["kind"] = "continuous"
        out[name] = (var.dims, values.astype(dtype), attrs)
    out = out.assign_coords(scale=("unit", scale))
    out["scale"].attrs["description"] = "counts per unit of activity: counts = activity * scale"
    out.attrs = {**ds.attrs, "kind": "continuous", "rescale": "unit-max", "rescale_trials": which}
    return out
