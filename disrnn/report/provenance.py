"""The provenance panel of a session report: dataset attrs, filters, counts, splits."""

from __future__ import annotations

import json

import numpy as np

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
    attrs = dict(ds.attrs)
    rows = []
    for key, label in _PROVENANCE_KEYS:
        if key in attrs and str(attrs[key]) != "":
            rows.append((label, _plain(attrs[key])))
    known = {k for k, _ in _PROVENANCE_KEYS} | {"filters", "dropped_trials"}
    other = [(k, _plain(v)) for k, v in sorted(attrs.items()) if k not in known]

    filters = []
    raw = attrs.get("filters")
    if raw not in (None, ""):
        try:
            parsed = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError:
            parsed = raw
        if isinstance(parsed, dict):
            for name, spec in parsed.items():
                if isinstance(spec, dict):
                    filters.append(
                        (name, _plain(spec.get("value", spec)), _plain(spec.get("removed", "")))
                    )
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
    dropped = attrs.get("dropped_trials", "")
    try:
        parsed_drop = json.loads(dropped) if isinstance(dropped, str) and dropped else dropped
    except json.JSONDecodeError:
        parsed_drop = dropped
    if isinstance(parsed_drop, dict):
        dropped = ", ".join(
            f"{reason}: {v.get('count', v) if isinstance(v, dict) else v}"
            for reason, v in parsed_drop.items()
        )

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
    splits = []
    if "split" in ds.coords:
        vals, cnt = np.unique(ds["split"].values.astype(str), return_counts=True)
        order = {"train": 0, "val": 1, "test": 2}
        splits = sorted(
            zip(vals.tolist(), cnt.tolist(), strict=True), key=lambda p: order.get(p[0], 9)
        )
    conditions = []
    if "condition" in ds.coords:
        vals, cnt = np.unique(ds["condition"].values.astype(str), return_counts=True)
        conditions = list(zip(vals.tolist(), cnt.tolist(), strict=True))
    areas = []
    if "area" in ds.coords:
        vals, cnt = np.unique(ds["area"].values.astype(str), return_counts=True)
        areas = list(zip(vals.tolist(), cnt.tolist(), strict=True))
    behavior = [n for n, v in ds.data_vars.items() if v.attrs.get("kind") == "behavior"]
    truth = [n for n in ("true_latents", "true_rates", "true_A", "true_B") if n in ds]
    return {
        "rows": rows,
        "other": other,
        "filters": filters,
        "no_filters": raw is not None and not filters,
        "dropped": _plain(dropped),
        "counts": counts,
        "splits": splits,
        "conditions": conditions[:50],
        "n_conditions": len(conditions),
        "areas": areas,
        "behavior": behavior,
        "truth": truth,
    }
