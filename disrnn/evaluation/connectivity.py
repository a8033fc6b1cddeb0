"""Connectivity of a low-rank RNN: W = A B, J = B A, sub-connectivities, agreement.

Pure numpy. Shapes: ``A`` (unit, latent) the decoder loadings, ``B`` (latent, unit) the
encoder weights on the history, ``groups`` (latent,) int group label of each latent.

- ``W = A @ B`` (unit, unit): ``W[i, j]`` = weight from input (presynaptic) unit j to output
  unit i, stored with dims ``(post, pre)``.
- ``J = B @ A`` (latent, latent), ``J[k, l]`` = weight from latent l to latent k.
- ``W_g = A[:, g] @ B[g, :]`` per group g; ``W = sum_g W_g``.
- off-block energy fraction ``= sum_{(k,l) outside group blocks} J_kl^2 / ||J||_F^2``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from disrnn.evaluation.alignment import group_blocks

__all__ = [
    "agreement",
    "connectivity_dataset",
    "connectivity_summary",
    "group_connectivity",
    "off_block_fraction",
]


def _check(A, B, groups):
    A = np.asarray(A, dtype=float)
    B = np.asarray(B, dtype=float)
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0] or A.shape[0] != B.shape[1]:
        raise ValueError(
            f"A must be (unit, latent) and B (latent, unit) with matching sizes, got "
            f"A {A.shape} and B {B.shape}"
        )
    groups = np.asarray(groups).astype(int).reshape(-1)
    if groups.shape[0] != A.shape[1]:
        raise ValueError(f"groups has {groups.shape[0]} labels for {A.shape[1]} latents")
    return A, B, groups


def group_connectivity(A, B, groups) -> dict[int, np.ndarray]:
    """Per-group sub-connectivity ``W_g = A[:, g] @ B[g, :]`` (unit, unit), keyed by label."""
    A, B, groups = _check(A, B, groups)
    return {g: A[:, cols] @ B[cols, :] for g, cols in group_blocks(groups).items()}


def off_block_fraction(J, groups) -> float:
    """Fraction of ``||J||_F^2`` outside the diagonal group blocks (0 for block-diagonal J).

    Args:
        J: (latent, latent); groups: (latent,) int labels. NaN if J is all zero.
    """
    J = np.asarray(J, dtype=float)
    groups = np.asarray(groups).reshape(-1)
    same = groups[:, None] == groups[None, :]
    total = float(np.sum(J**2))
    if total == 0.0:
        return float("nan")
    return float(np.sum(J[~same] ** 2)) / total


def agreement(est, true) -> dict[str, float]:
    """Agreement of two same-shape matrices over all entries.

    Returns:
        ``mae`` = mean |e - t|, ``rmse`` = sqrt(mean (e - t)^2),
        ``r2`` = 1 - sum (e - t)^2 / sum (t - mean t)^2, ``pearson`` = corr(e, t)
        (NaN where a variance is zero).

    Raises:
        ValueError: the shapes differ.
    """
    e = np.asarray(est, dtype=float).ravel()
    t = np.asarray(true, dtype=float).ravel()
    if np.shape(est) != np.shape(true):
        raise ValueError(f"shapes differ: estimate {np.shape(est)} vs truth {np.shape(true)}")
    d = e - t
    sst = float(np.sum((t - t.mean()) ** 2))
    se, st = e.std(), t.std()
    return {
        "mae": float(np.mean(np.abs(d))),
        "rmse": float(np.sqrt(np.mean(d**2))),
        "r2": 1.0 - float(np.sum(d**2)) / sst if sst > 0 else float("nan"),
        "pearson": float(np.mean((e - e.mean()) * (t - t.mean())) / (se * st))
        if se > 0 and st > 0
        else float("nan"),
    }


def connectivity_summary(
    A, B, groups, true_A=None, true_B=None, true_groups=None, matching=None, columns=None
) -> dict[str, float]:
    """Scalar connectivity metrics (flat dict, for ``metrics.json``).

    Args:
        A, B, groups: the fitted model (see module doc).
        true_A (unit, latent_true), true_B (latent_true, unit), true_groups (latent_true,):
            the ground truth, optional.
        matching: list of (inferred group label, true group label) pairs, e.g.
            ``align_groups(...).matching``; needed for sub-connectivity agreement.
        columns: optional (unit,) bool or index array of the input units to compare
            (e.g. held-in units when co-smoothing, since B is zero on held-out inputs).

    Returns:
        ``J_offblock_frac``, ``J_spectral_radius``, ``J_eig_max_real``; with the truth:
        ``W_{mae,rmse,r2,pearson}``, per matched group ``Wg{t}_{...}`` (t the true label),
        and ``Wsub_{mae,rmse,r2,pearson}`` averaged over matched groups.
    """
    A, B, groups = _check(A, B, groups)
    J = B @ A
    ev = np.linalg.eigvals(J)
    out = {
        "J_offblock_frac": off_block_fraction(J, groups),
        "J_spectral_radius": float(np.max(np.abs(ev))),
        "J_eig_max_real": float(np.max(ev.real)),
    }
    if true_A is None or true_B is None:
        return out
    tA, tB, tg = _check(
        true_A, true_B, np.zeros(np.shape(true_A)[1]) if true_groups is None else true_groups
    )
    if tA.shape[0] != A.shape[0]:
        raise ValueError(f"true_A has {tA.shape[0]} units but A has {A.shape[0]}")
    cols = slice(None) if columns is None else np.asarray(columns)
    for k, v in agreement((A @ B)[:, cols], (tA @ tB)[:, cols]).items():
        out[f"W_{k}"] = v
    if matching:
        wg, twg = group_connectivity(A, B, groups), group_connectivity(tA, tB, tg)
        per = []
        for gi, gt in matching:
            ag = agreement(wg[gi][:, cols], twg[gt][:, cols])
            per.append(ag)
            for k, v in ag.items():
                out[f"Wg{gt}_{k}"] = v
        for k in ("mae", "rmse", "r2", "pearson"):
            out[f"Wsub_{k}"] = float(np.nanmean([p[k] for p in per]))
    return out


def connectivity_dataset(
    A, B, groups, unit=None, true_A=None, true_B=None, true_groups=None, matching=None
) -> xr.Dataset:
    """Build the ``connectivity.nc`` dataset.

    Variables (eigenvalues stored as real and imaginary parts; NetCDF has no complex):

    - ``A`` (post, latent), ``B`` (latent, pre), ``W`` (post, pre), ``J`` (latent, latent_in),
      ``W_g`` (group, post, pre);
    - ``J_eig_real``/``J_eig_imag`` (eig), sorted by decreasing modulus;
    - ``block_eig_real``/``block_eig_imag`` (block_eig) with coord ``block_eig_group``:
      eigenvalues of each group's diagonal block of J;
    - with the truth: ``true_W`` (post, pre), ``true_W_g`` (true_group, post, pre),
      ``true_J_eig_real/imag`` (true_eig), and coord ``matched_group`` (group) = the true
      group matched to each inferred group (-1 if none).
    - attrs: ``J_offblock_frac``.

    Coords: ``post``/``pre`` = unit ids, ``latent``/``latent_in`` = latent index,
    ``latent_group`` (latent), ``group`` = group labels.
    """
    A, B, groups = _check(A, B, groups)
    n_unit, n_lat = A.shape
    unit = np.arange(n_unit) if unit is None else np.asarray(unit)
    J = B @ A
    blocks = group_blocks(groups)
    wg = group_connectivity(A, B, groups)
    ev = _sorted_eig(J)
    b_ev, b_lab = [], []
    for g, cols in blocks.items():
        e = _sorted_eig(J[np.ix_(cols, cols)])
        b_ev.append(e)
        b_lab.extend([g] * e.size)
    b_ev = np.concatenate(b_ev)
    ds = xr.Dataset(
        {
            "A": (("post", "latent"), A),
            "B": (("latent", "pre"), B),
            "W": (("post", "pre"), A @ B),
            "J": (("latent", "latent_in"), J),
            "W_g": (("group", "post", "pre"), np.stack([wg[g] for g in blocks])),
            "J_eig_real": ("eig", ev.real),
            "J_eig_imag": ("eig", ev.imag),
            "block_eig_real": ("block_eig", b_ev.real),
            "block_eig_imag": ("block_eig", b_ev.imag),
        },
        coords={
            "post": unit,
            "pre": unit,
            "latent": np.arange(n_lat),
            "latent_in": np.arange(n_lat),
            "latent_group": ("latent", groups),
            "group": np.array(list(blocks), dtype=int),
            "block_eig_group": ("block_eig", np.array(b_lab, dtype=int)),
        },
        attrs={"J_offblock_frac": off_block_fraction(J, groups)},
    )
    if true_A is not None and true_B is not None:
        tg = np.zeros(np.shape(true_A)[1], int) if true_groups is None else true_groups
        tA, tB, tg = _check(true_A, true_B, tg)
        twg = group_connectivity(tA, tB, tg)
        tev = _sorted_eig(tB @ tA)
        ds["true_W"] = (("post", "pre"), tA @ tB)
        ds["true_W_g"] = (("true_group", "post", "pre"), np.stack(list(twg.values())))
        ds = ds.assign_coords(true_group=np.array(list(twg), dtype=int))
        ds["true_J_eig_real"] = ("true_eig", tev.real)
        ds["true_J_eig_imag"] = ("true_eig", tev.imag)
        i2t = {i: t for i, t in (matching or [])}
        ds = ds.assign_coords(
            matched_group=("group", np.array([i2t.get(g, -1) for g in blocks], dtype=int))
        )
    return ds


def _sorted_eig(m: np.ndarray) -> np.ndarray:
    e = np.linalg.eigvals(m)
    return e[np.argsort(-np.abs(e), kind="stable")]
