"""The provenance panel of a session report: dataset attrs, filters, counts, splits."""

from __future__ import annotations

import json

import numpy as np

from disrnn.data.io import behavior_variables
from disrnn.report.render import _plain

_PROVENANCE_KEYS = (
    ("source", "source"),
    ("dandiset", "dandiset"),
    ("dandiset_version", "version"),
    ("asset_path", "asset"),
    ("nwb_path", "NWB file"),
    ("sha256", "sha256"),
    ("kind", "activity kind"),
    ("bin_width", "bin width (s)"),
    ("alignment", "alignment"),
    ("window_start", "window start (s)"),
    ("window_end", "window end (s)"),
)


def _provenance(ds) -> dict:
    """What the provenance panel shows of dataset ``ds``: its attrs (the known ones
    labelled, the others as they are), the unit filters, the dropped trials, the counts of
    trials, units and bins, the splits, conditions and areas, behavior and truth."""
    attrs = dict(ds.attrs)
    rows = []
    for key, label in _PROVENANCE_KEYS:
        if key in attrs and str(attrs[key]) != "":
            rows.append((label, _plain(attrs[key])))
    known = {k for k, _ in _PROVENANCE_KEYS} | {"filters", "dropped_trials"}
    other = [(k, _plain(v)) for k, v in sorted(attrs.items()) if k not in known]
    raw = attrs.get("filters")
    filters = _filter_rows(raw)
    splits = []
    if "split" in ds.coords:
        vals, cnt = np.unique(ds["split"].values.astype(str), return_counts=True)
        order = {"train": 0, "val": 1, "test": 2}
        splits = sorted(
            zip(vals.tolist(), cnt.tolist(), strict=True), key=lambda p: order.get(p[0], 9)
        )
    conditions = _value_counts(ds, "condition")
    behavior = behavior_variables(ds)
    truth = [n for n in ("true_latents", "true_rates", "true_A", "true_B") if n in ds]
    return {
        "rows": rows,
        "other": other,
        "filters": filters,
        "no_filters": raw is not None and not filters,
        "dropped": _plain(_dropped_text(attrs.get("dropped_trials", ""))),
        "counts": _counts(ds),
        "splits": splits,
        "conditions": conditions[:50],
        "n_conditions": len(conditions),
        "areas": _value_counts(ds, "area"),
        "behavior": behavior,
        "truth": truth,
    }


def _filter_rows(raw) -> list[tuple]:
    """(filter, value, units removed) rows of the ``filters`` attr (JSON dict or list)."""
    filters = []
    if raw in (None, ""):
        return filters
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        parsed = raw
    if isinstance(parsed, dict):
        for name, spec in parsed.items():
            if isinstance(spec, dict):
                removed = _plain(spec.get("removed", ""))
                if spec.get("pairs"):  # duplicates: which unit was whose twin
                    twins = "; ".join(f"{p[0]}, twin of {p[1]}" for p in spec["pairs"])
                    removed = f"{removed} (units {twins})"
                filters.append((name, _plain(spec.get("value", spec)), removed))
            else:
                filters.append((name, _plain(spec), ""))
    elif isinstance(parsed, list):
        for spec in parsed:
            if isinstance(spec, dict):
                filters.append(
                    (
                        _plain(spec.get("name", spec.get("filter", ""))),
                        _plain(spec.get("value", "")),
                        _plain(spec.get("removed", "")),
                    )
                )
            else:
                filters.append((_plain(spec), "", ""))
    else:
        filters.append((_plain(parsed), "", ""))
    return filters


def _dropped_text(dropped):
    """The ``dropped_trials`` attr as "reason: count, ..." (as it is when not a JSON dict)."""
    try:
        parsed_drop = json.loads(dropped) if isinstance(dropped, str) and dropped else dropped
    except json.JSONDecodeError:
        parsed_drop = dropped
    if isinstance(parsed_drop, dict):
        dropped = ", ".join(
            f"{reason}: {v.get('count', v) if isinstance(v, dict) else v}"
            for reason, v in parsed_drop.items()
        )
    return dropped


def _counts(ds) -> list[tuple]:
    """(label, value) rows: trials, units, bins per trial, held-in / held-out, bin centres."""
    n_trials = int(ds.sizes["trial"])
    n_units = int(ds.sizes["unit"])
    counts = [
        ("trials", n_trials),
        ("units", n_units),
        ("time bins per trial", int(ds.sizes["time"])),
    ]
    if "heldout" in ds.coords:
        h = int(np.asarray(ds["heldout"].values, bool).sum())
        counts.append(("held-in / held-out units", f"{n_units - h} / {h}"))
    if "time" in ds.coords and ds.sizes["time"]:
        t = ds["time"].values
        counts.append(("bin centres (s)", f"{t[0]:.4g} … {t[-1]:.4g}"))
    return counts


def _value_counts(ds, coord: str) -> list[tuple]:
    """(value, count) of the coord ``coord`` in sorted order; [] without it."""
    if coord not in ds.coords:
        return []
    vals, cnt = np.unique(ds[coord].values.astype(str), return_counts=True)
    return list(zip(vals.tolist(), cnt.tolist(), strict=True))
