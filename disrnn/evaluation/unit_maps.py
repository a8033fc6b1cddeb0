"""Which units form each module: every unit's share of each latent group, per unit and
per brain area, and how well the assignment agrees across seeds.

For a fit with a linear decoder A (unit, latent), unit i's predicted pre-activation is
eta_it = sum_g A_i,g z_g,t + a_i (the link f turns it into the mean). Over the scored bins
of the test trials (``valid_bins``, as every metric):

    v_ig     = Var_t(A_i,g z_g,t)           (unit, group) variance group g puts into unit i
    share_ig = v_ig / sum_g' v_ig'          (unit, group) sums to 1 over groups (covariances
                                            between groups are not counted)
    drive_ig = || B[g, i] ||_2              (unit, group) norm of unit i's column in B_g:
                                            how strongly its history drives group g (0 for
                                            held-out units, which the encoder does not see)
    assignment_i = argmax_g share_ig        (unit,) int, -1 when the unit has no variance
    dominant_i   = that group's label when share >= DOMINANT_SHARE, else "mixed"

Per area (the unit coord ``area``, from the NWB electrodes table): the mean share of each
group over the area's units and the count of each dominant label. Across seeds (groups
are only defined up to their order): each seed's groups are matched to the first seed's
by the Hungarian method on the unit-share profiles, and the agreement of the unit
assignments is the adjusted Rand index (ARI; 1 = the same partition of the units, 0 =
chance; it does not depend on the group labels).

:func:`unit_metrics` is the evaluation step (metrics.json keys and ``units.nc``);
:func:`unit_groups` the computation on arrays; ``Fit.unit_groups(ds)`` the same from
Python; :func:`seed_agreement` compares saved ``units.nc`` of several seeds.
"""

from __future__ import annotations

import itertools

import numpy as np
import xarray as xr

from disrnn.data.io import clean_attrs

__all__ = [
    "DOMINANT_SHARE",
    "UNIT_KEYS",
    "area_table",
    "fit_unit_groups",
    "group_shares",
    "match_groups",
    "seed_agreement",
    "unit_groups",
    "unit_metrics",
]

#: a unit belongs to a group when the group carries at least this share of its predicted
#: variance (2/3: at least twice the share of every other group together), else "mixed"
DOMINANT_SHARE = 2.0 / 3.0
MIXED = "mixed"
#: metrics.json keys of this step (null for fits without a linear decoder or one group)
UNIT_KEYS = (
    "unit_mixed_fraction",
    "unit_dominant_share_mean",
    "unit_group_counts",
    "unit_area_ari",
    "unit_assignment_ari_true",
)
#: area labels that name no brain area (the reader's default, the simulator's dense one)
NO_AREA = ("unknown", "simulated", "")


def group_shares(A: np.ndarray, z: np.ndarray, latent_group: np.ndarray):
    """Variance each group puts into each unit's predicted pre-activation.

    Args:
        A: (unit, latent) decoder; z: (sample, latent) latents of the scored bins (rows
            with a non-finite value are dropped); latent_group: (latent,) int labels.

    Returns:
        (labels (group,) sorted unique labels, var (unit, group) float64, share (unit,
        group) float64: var / its sum over groups, NaN where a unit has no variance).

    Raises:
        ValueError: shapes that do not match, or fewer than 2 finite samples.
    """
    A, z = np.asarray(A, float), np.asarray(z, float)
    latent_group = np.asarray(latent_group).astype(int)
    if A.ndim != 2 or z.ndim != 2 or not A.shape[1] == z.shape[1] == latent_group.size:
        raise ValueError(
            f"A (unit, latent), z (sample, latent) and latent_group (latent,) must agree; "
            f"got {A.shape}, {z.shape}, {latent_group.shape}"
        )
    z = z[np.isfinite(z).all(1)]
    if z.shape[0] < 2:
        raise ValueError(f"need at least 2 finite latent samples, got {z.shape[0]}")
    labels = np.unique(latent_group)
    var = np.empty((A.shape[0], labels.size))
    for j, g in enumerate(labels):
        cols = latent_group == g
        var[:, j] = (z[:, cols] @ A[:, cols].T).var(axis=0)  # (sample, unit) -> (unit,)
    total = var.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, var / total, np.nan)
    return labels, var, share


def assign(share: np.ndarray, labels: np.ndarray, threshold: float = DOMINANT_SHARE):
    """(assignment (unit,) int group label or -1, dominant (unit,) str label or "mixed")."""
    ok = np.isfinite(share).all(1)  # False: a unit without predicted variance
    filled = np.where(ok[:, None], share, 0.0)
    assignment = np.where(ok, labels[filled.argmax(1)], -1)
    dominant = np.where(ok & (filled.max(1) >= threshold), assignment.astype(str), MIXED)
    return assignment.astype(int), dominant.astype(str)


def unit_groups(
    A: np.ndarray,
    B: np.ndarray | None,
    z: np.ndarray,
    latent_group: np.ndarray,
    units: xr.Dataset | None = None,
    threshold: float = DOMINANT_SHARE,
) -> xr.Dataset:
    """The unit map of one fit (the ``units.nc`` Dataset).

    Args:
        A: (unit, latent) decoder; B: (latent, unit) encoder or None (MLP encoder: no
            drive); z: (sample, latent) latents of the scored test bins; latent_group:
            (latent,) the fit's groups; units: a Dataset whose ``unit`` coords (NWB ids
            and metadata such as ``area``, ``heldout``, depth or quality) are copied;
            threshold: :data:`DOMINANT_SHARE`.

    Returns:
        Dataset over (unit, group): ``share``, ``variance``, ``drive`` (NaN without B),
        ``assignment`` (unit,) int, ``dominant`` (unit,) str; when a unit's ``area``
        names a brain area (not ``NO_AREA``) also :func:`area_table`'s variables; attrs
        ``dominant_share``, ``n_bins``.
    """
    labels, var, share = group_shares(A, z, latent_group)
    assignment, dominant = assign(share, labels, threshold)
    lg = np.asarray(latent_group).astype(int)
    drive = np.full(share.shape, np.nan)
    if B is not None:
        B = np.asarray(B, float)
        drive = np.stack([np.linalg.norm(B[lg == g], axis=0) for g in labels], axis=1)
    coords = {"unit": np.arange(share.shape[0]), "group": labels}
    if units is not None:
        coords["unit"] = units["unit"].values
        coords |= {
            k: ("unit", c.values)
            for k, c in units["unit"].coords.items()
            if k != "unit" and c.dims == ("unit",)
        }
    out = xr.Dataset(
        {
            "share": (("unit", "group"), share),
            "variance": (("unit", "group"), var),
            "drive": (("unit", "group"), drive),
            "assignment": ("unit", assignment),
            "dominant": ("unit", dominant),
        },
        coords=coords,
        attrs={"dominant_share": float(threshold), "n_bins": int(np.isfinite(z).all(1).sum())},
    )
    return out.merge(area_table(out)) if _named_areas(out).any() else out


def _named_areas(units: xr.Dataset) -> np.ndarray:
    """(unit,) bool: the unit's ``area`` names a brain area (not ``NO_AREA``)."""
    if "area" not in units.coords:
        return np.zeros(units.sizes["unit"], bool)
    return ~np.isin(np.asarray(units["area"].values).astype(str), NO_AREA)


def area_table(units: xr.Dataset) -> xr.Dataset:
    """Area x group summary of a unit map (its unit coord ``area``).

    Returns:
        Dataset over ``brain_area`` (areas in order of first appearance): ``area_share``
        (brain_area, group) mean share over the area's units, ``area_units`` (brain_area,)
        unit counts, ``area_dominant`` (brain_area, label) units per dominant label
        (the group labels, then "mixed").
    """
    area = np.asarray(units["area"].values).astype(str)
    names = list(dict.fromkeys(area.tolist()))
    labels = [str(g) for g in units["group"].values] + [MIXED]
    dominant = np.asarray(units["dominant"].values).astype(str)
    share = units["share"].values
    mean = np.stack([np.nanmean(share[area == a], axis=0) for a in names])
    counts = np.array([[np.sum((area == a) & (dominant == lab)) for lab in labels] for a in names])
    return xr.Dataset(
        {
            "area_share": (("brain_area", "group"), mean),
            "area_units": ("brain_area", np.array([np.sum(area == a) for a in names])),
            "area_dominant": (("brain_area", "label"), counts),
        },
        coords={"brain_area": names, "label": labels, "group": units["group"].values},
    )


def _ari(a, b) -> float | None:
    """Adjusted Rand index of two labellings; None when either puts every unit in one
    label (sklearn returns 1.0 for two such labellings, which says nothing)."""
    from sklearn.metrics import adjusted_rand_score

    a, b = np.asarray(a), np.asarray(b)
    if a.size < 2 or np.unique(a).size < 2 or np.unique(b).size < 2:
        return None
    return float(adjusted_rand_score(a, b))


def _metrics(units: xr.Dataset, true_assignment: np.ndarray | None) -> dict:
    """The metrics.json keys of a unit map (``UNIT_KEYS``)."""
    dominant = np.asarray(units["dominant"].values).astype(str)
    share = units["share"].values
    assignment = units["assignment"].values
    ok = assignment >= 0
    out = {
        "unit_mixed_fraction": float(np.mean(dominant == MIXED)),
        "unit_dominant_share_mean": float(np.nanmean(np.nanmax(share[ok], axis=1)))
        if ok.any()
        else None,
        "unit_group_counts": {
            lab: int(np.sum(dominant == lab))
            for lab in [str(g) for g in units["group"].values] + [MIXED]
        },
        "unit_area_ari": None,
        "unit_assignment_ari_true": None,
    }
    if "area" in units.coords:
        area = np.asarray(units["area"].values).astype(str)
        keep = ok & _named_areas(units)
        if np.unique(area[keep]).size >= 2:
            out["unit_area_ari"] = _ari(area[keep], assignment[keep])
    if true_assignment is not None:
        keep = ok & (true_assignment >= 0)
        out["unit_assignment_ari_true"] = _ari(true_assignment[keep], assignment[keep])
    return out


def _true_map(ev, units: xr.Dataset) -> np.ndarray | None:
    """(unit,) true group of each unit whose true share passes the threshold (-1: mixed or
    unknown), from ``true_A`` and ``true_latents`` on the same scored test bins. Adds to
    ``units`` ``true_share`` (unit, true_group) and ``true_dominant`` (unit,) in the fit's
    group labels (each true group relabelled by :func:`match_groups` on the shares; "-"
    for a true group no fit group matches). None without the truth."""
    ds = ev.ds
    if "true_A" not in ds or "true_latents" not in ds:
        return None
    from disrnn.evaluation.alignment import flatten_latents

    tl = ds["true_latents"]
    tg = tl["latent_group"].values if "latent_group" in tl.coords else np.zeros(tl.shape[-1], int)
    zt = flatten_latents(tl.transpose("trial", "time", ...).values[ev.test], ev.ok)
    labels, _, share = group_shares(ds["true_A"].transpose("unit", ...).values, zt, tg)
    assignment, dominant = assign(share, labels, float(units.attrs["dominant_share"]))
    to_fit = match_groups(units["share"].values, share)  # true column -> fit column
    fit_label = {
        str(t): str(units["group"].values[to_fit[j]]) for j, t in enumerate(labels) if j in to_fit
    }
    units["true_share"] = (("unit", "true_group"), share)
    units["true_dominant"] = (
        "unit",
        np.array([fit_label.get(d, "-") if d != MIXED else d for d in dominant]),
    )
    units.coords["true_group"] = labels
    return np.where(dominant == MIXED, -1, assignment)


def unit_metrics(fit, ev, lat, m: dict) -> xr.Dataset | None:
    """The evaluation step: the fit's unit map into ``m`` (``UNIT_KEYS``) and units.nc.

    Args:
        fit: the Fit; ev: :class:`~disrnn.evaluation.steps.EvalSplit`; lat:
            :class:`~disrnn.evaluation.steps.LatentSet` (its ``mu``: scored test bins).

    Returns:
        the ``units.nc`` Dataset (:func:`unit_groups`, plus ``true_share`` and
        ``true_dominant`` when the truth is known), or None for an MLP decoder. Its
        metrics are null for a one-group fit (every unit is that group's).
    """
    m.update(dict.fromkeys(UNIT_KEYS))
    A = getattr(fit, "A", None)
    if A is None or int(lat.finite.sum()) < 2:
        return None
    units = unit_groups(A, getattr(fit, "B", None), lat.mu, lat.labels, ev.ds)
    truth = _true_map(ev, units)
    if units.sizes["group"] >= 2:
        m.update(_metrics(units, truth))
    units.attrs |= clean_attrs({"method": m.get("method"), "seed": m.get("seed")})
    return units


def fit_unit_groups(fit, ds: xr.Dataset, split: str = "test") -> xr.Dataset:
    """``Fit.unit_groups(ds)``: the unit map on the scored bins of ``split``'s trials.

    Raises:
        ValueError: an MLP decoder (no A), no ``split`` coordinate or no such trials.
    """
    from disrnn.evaluation.alignment import flatten_latents
    from disrnn.fit.tensors import valid_bins

    if getattr(fit, "A", None) is None:
        raise ValueError(f"{fit!r} has an MLP decoder: its units have no group shares")
    if "split" not in ds.coords:
        raise ValueError("the dataset has no 'split' coordinate; build it with `disrnn bin`")
    trials = np.flatnonzero(np.asarray(ds["split"].values).astype(str) == split)
    if not trials.size:
        raise ValueError(f"the dataset has no {split!r} trials")
    sub = ds.isel(trial=trials)
    z = flatten_latents(fit.latents(sub), valid_bins(sub, fit.history))
    return unit_groups(fit.A, fit.B, z, fit.latent_group, ds)


def match_groups(reference: np.ndarray, other: np.ndarray) -> dict[int, int]:
    """{column of ``other`` -> column of ``reference``}: the Hungarian matching of the
    groups' unit-share profiles (columns of (unit, group) shares) that minimises the
    summed squared difference; with unequal group counts the extra groups stay unmatched."""
    from scipy.optimize import linear_sum_assignment

    a, b = np.nan_to_num(reference), np.nan_to_num(other)
    cost = ((a[:, :, None] - b[:, None, :]) ** 2).sum(0)  # (ref group, other group)
    rows, cols = linear_sum_assignment(cost)
    return {int(c): int(r) for r, c in zip(rows, cols, strict=True)}


def seed_agreement(maps: list[xr.Dataset]) -> dict:
    """Agreement of the unit assignments of several seeds' unit maps (same units).

    Returns:
        ``n_seeds``; ``ari`` {"s1-s2": ARI} per pair of seeds and ``ari_mean``, ``ari_min``
        (None with one seed); ``ari_dominant_mean`` / ``_min``: the same over the units
        that are not "mixed" in either seed of a pair (None without ``dominant``);
        ``matched`` (seed, unit) each seed's assignment relabelled to the first seed's
        groups (-1 where unmatched or without variance);
        ``unit_agreement`` (unit,) the fraction of seeds whose matched assignment equals
        the first seed's.

    Raises:
        ValueError: no maps, or maps of different units.
    """
    if not maps:
        raise ValueError("seed_agreement needs at least one unit map")
    units = maps[0]["unit"].values
    for u in maps[1:]:
        if not np.array_equal(u["unit"].values, units):
            raise ValueError("the unit maps are of different units; compare seeds of one session")
    seeds = [u.attrs.get("seed", i) for i, u in enumerate(maps)]
    ref = maps[0]
    matched = []
    for u in maps:
        to_ref = match_groups(ref["share"].values, u["share"].values)
        col = {int(g): j for j, g in enumerate(u["group"].values)}
        ref_labels = ref["group"].values
        a = u["assignment"].values
        matched.append(
            np.array(
                [ref_labels[to_ref[col[g]]] if g in col and col[g] in to_ref else -1 for g in a]
            )
        )
    matched = np.stack(matched)
    ari = {
        f"{seeds[i]}-{seeds[j]}": _ari(maps[i]["assignment"].values, maps[j]["assignment"].values)
        for i, j in itertools.combinations(range(len(maps)), 2)
    }
    vals = [v for v in ari.values() if v is not None]
    # the same on the units one group dominates in both seeds: a mixed unit's argmax is
    # close to arbitrary, so the ARI over all units mixes module agreement with it
    firm_ari = []
    if all("dominant" in u for u in maps):
        firm = [np.asarray(u["dominant"].values).astype(str) != MIXED for u in maps]
        for i, j in itertools.combinations(range(len(maps)), 2):
            k = firm[i] & firm[j]
            firm_ari.append(_ari(maps[i]["assignment"].values[k], maps[j]["assignment"].values[k]))
    firm_ari = [v for v in firm_ari if v is not None]
    return {
        "n_seeds": len(maps),
        "seeds": seeds,
        "ari": ari,
        "ari_mean": float(np.mean(vals)) if vals else None,
        "ari_min": float(np.min(vals)) if vals else None,
        "ari_dominant_mean": float(np.mean(firm_ari)) if firm_ari else None,
        "ari_dominant_min": float(np.min(firm_ari)) if firm_ari else None,
        "matched": matched,
        "unit_agreement": (matched == matched[0]).mean(0),
    }
