"""The session report's unit map of one method: which units (by NWB id, with the unit
metadata the dataset has) each latent group carries, per brain area, and how well the
assignment agrees across seeds. Reads ``units.nc`` of each seed's evaluation folder
(:mod:`disrnn.evaluation.unit_maps`)."""

from __future__ import annotations

import numpy as np

from disrnn import plotting
from disrnn.evaluation.unit_maps import seed_agreement
from disrnn.report.render import _fig, _plain, fmt
from disrnn.report.results import EvalResult
from disrnn.report.summary_box import REFERENCES, seeds_text

__all__ = ["unit_section"]

#: units.nc coords that are not unit metadata to show
_NOT_META = {"unit", "group", "true_group", "brain_area", "label"}


def unit_section(runs: list[EvalResult], rep: EvalResult) -> dict:
    """What the template's unit-map block shows for one method.

    Args:
        runs: every seed's evaluation of the method; rep: the representative seed (its
            map is drawn; the other seeds' groups are matched to its groups).

    Returns:
        {"note"} when there is nothing to map (a reference method; no ``units.nc``: an MLP
        decoder or an evaluation written before unit maps; one group), else {"figures", "columns",
        "rows", "area" (or None), "agreement" (text), "agreement_data" (the
        :func:`~disrnn.evaluation.unit_maps.seed_agreement` dict or None), "threshold",
        "seeds"}.
    """
    units = rep.units
    if rep.method in REFERENCES:
        return {
            "note": f"No unit map: {rep.method} is a community reference, with no latent groups to assign units to."
        }
    if units is None or "share" not in units:
        return {
            "note": "No unit map: this evaluation has no units.nc (an MLP decoder has no A to read the groups' shares from)."
        }
    if units.sizes["group"] < 2:
        return {
            "note": "One latent group: every unit's predicted activity is this group's, so there is no unit map to draw."
        }
    others = [r for r in runs if r is not rep and r.units is not None and "share" in r.units]
    agreement = seed_agreement([units] + [r.units for r in others]) if others else None
    thr = float(units.attrs.get("dominant_share", 2 / 3))
    figs = [
        _fig(
            "Unit map",
            plotting.plot_unit_map,
            units,
            caption=f"Top: each unit's share of its predicted variance (the variance of A_g z_g over the test bins, divided by the sum over groups) carried by each group; units labelled by NWB id and sorted by dominant group (share ≥ {thr:.2g}, else mixed). Bottom: how strongly each unit drives each group (the norm of its column in B_g; held-out units drive nothing).",
        )
    ]
    if "area_share" in units:
        figs.append(
            _fig(
                "Areas and groups",
                plotting.plot_area_groups,
                units,
                caption="Mean share of each group over the units of each brain area (the electrodes' location in the NWB file).",
            )
        )
    columns, rows = _unit_rows(units, agreement, len(others) + 1)
    return {
        "note": "",
        "figures": figs,
        "columns": columns,
        "rows": rows,
        "area": _area_rows(units),
        "agreement": _agreement_text(agreement, [rep] + others),
        "agreement_data": agreement,
        "threshold": fmt(thr, 2),
        "seeds": seeds_text([rep] + others),
    }


def _agreement_text(agreement: dict | None, runs: list[EvalResult]) -> str:
    """One sentence on the seeds; ``runs[0]`` is the seed whose map is drawn."""
    drawn = f"Map of seed {runs[0].seed}, the representative seed."
    ordered = sorted(runs, key=lambda r: (r.seed is None, r.seed or 0))
    if agreement is None:
        return f"{drawn} {seeds_text(ordered)}: agreement of the unit assignments across seeds needs two or more seeds."
    if agreement["ari_mean"] is None:
        return (f"{drawn} Across {seeds_text(ordered)}: the unit assignments cannot be "
                "compared (a seed put every unit in one group).")  # fmt: skip
    return (
        f"{drawn} Across {seeds_text(ordered)}: adjusted Rand index of the unit assignments "
        f"{fmt(agreement['ari_mean'], 3)} on average over pairs of seeds, lowest "
        f"{fmt(agreement['ari_min'], 3)} (1 = the same units in the same groups, 0 = chance)"
        + (
            f", {fmt(agreement['ari_dominant_mean'], 3)} (lowest "
            f"{fmt(agreement['ari_dominant_min'], 3)}) on the units one group dominates in "
            "both seeds"
            if agreement.get("ari_dominant_mean") is not None
            else ""
        )
        + f"; groups matched to seed {runs[0].seed}'s by their unit-share profiles."
    )


def _unit_rows(units, agreement: dict | None, n_seeds: int) -> tuple[list[str], list[dict]]:
    """Table columns and one row per unit (in the map's order)."""
    from disrnn.plotting.units import unit_order

    groups = [str(g) for g in units["group"].values]
    meta = [k for k, c in units.coords.items() if k not in _NOT_META and c.dims == ("unit",)]
    has_drive = bool(np.isfinite(units["drive"]).any())
    columns = ["unit (NWB id)", *meta, "dominant group"]
    columns += [f"share g{g}" for g in groups]
    columns += [f"drive g{g}" for g in groups] if has_drive else []
    columns += ["true dominant (matched to these groups)"] if "true_dominant" in units else []
    columns += [f"same group in seeds (of {n_seeds})"] if agreement is not None else []
    rows = []
    for i in unit_order(units):
        cells = [_plain(units["unit"].values[i])]
        cells += [_meta_cell(units[k].values[i]) for k in meta]
        cells += [str(units["dominant"].values[i])]
        cells += [fmt(v, 3) for v in units["share"].values[i]]
        cells += [fmt(v, 3) for v in units["drive"].values[i]] if has_drive else []
        cells += [str(units["true_dominant"].values[i])] if "true_dominant" in units else []
        if agreement is not None:
            cells.append(str(int(round(agreement["unit_agreement"][i] * n_seeds))))
        rows.append(
            {"unit": cells[0], "dominant": str(units["dominant"].values[i]), "cells": cells}
        )
    return columns, rows


def _meta_cell(v) -> str:
    if isinstance(v, bool | np.bool_):
        return "yes" if v else ""
    if isinstance(v, float | np.floating):
        return fmt(v)
    return _plain(v)


def _area_rows(units) -> dict | None:
    """The area x group table: {"columns", "rows"} or None without areas."""
    if "area_share" not in units:
        return None
    groups = [str(g) for g in units["group"].values]
    labels = [str(v) for v in units["label"].values]
    columns = ["area", "units", *[f"mean share g{g}" for g in groups]]
    columns += [f"units in g{lab}" if lab in groups else f"units {lab}" for lab in labels]
    rows = []
    for i, a in enumerate(units["brain_area"].values):
        cells = [_plain(a), str(int(units["area_units"].values[i]))]
        cells += [fmt(v, 3) for v in units["area_share"].values[i]]
        cells += [str(int(v)) for v in units["area_dominant"].values[i]]
        rows.append({"area": str(a), "cells": cells})
    return {"columns": columns, "rows": rows}
