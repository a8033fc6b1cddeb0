"""``evaluate``: one fit on one dataset's test trials, written as an evaluation folder.

The evaluation folder (written atomically) holds:

- ``metrics.json``: the keys documented in :func:`evaluate` (``null`` = not applicable);
- ``latents.nc``: ``latents`` (trial, time, latent) posterior means of *every* trial with
  coords ``latent_group`` (latent), ``split`` (trial) and ``condition`` (trial, if any);
  with the truth also ``true_latents`` (trial, time, true_latent) and ``aligned_latents``
  (trial, time, true_latent) = the matched groupwise affine map of the inferred latents
  (fitted on the test bins) applied to every trial, for plotting;
- ``connectivity.nc``: :func:`disrnn.evaluation.connectivity.connectivity_dataset` (an
  empty Dataset with attrs ``available = 0`` for MLP variants);
- ``rollout.nc``: test trials only: ``observed``, ``predicted`` (one step ahead),
  ``rollout_mean`` / ``rollout_sample`` (free-running from bin L, feeding back means /
  samples) and ``true_rates`` when known, all (trial, time, unit); per unit ``null_rate``,
  ``ll_per_unit``, ``recon_r2_per_unit``, ``bps_per_unit`` (unit); k-step curves
  ``kstep_r2`` / ``kstep_bps`` / ``kstep_n`` (horizon).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import xarray as xr

from disrnn._atomic import atomic_dir, atomic_file
from disrnn.data.io import clean_attrs, save_dataset
from disrnn.evaluation import alignment as al
from disrnn.evaluation import metrics as mt
from disrnn.evaluation.connectivity import connectivity_dataset, connectivity_summary
from disrnn.evaluation.inputs import (
    _abs,
    _check_same_data,
    _fit_info,
    _kind,
    _load,
    _load_fit,
    _null_rate,
    _session,
    _sigma_q,
)
from disrnn.evaluation.rollout import (
    generation_metrics,
    history_length,
    rollout_dataset,
    valid_bins,
)

__all__ = ["compute_evaluation", "evaluate"]

_SESSION_ATTRS = (
    "source",
    "dandiset",
    "dandiset_version",
    "asset_path",
    "nwb_path",
    "sha256",
    "bin_width",
    "alignment",
)
_CONN_KEYS = ("J_offblock_frac", "J_spectral_radius", "J_eig_max_real")


def evaluate(fit_dir, dataset, out_dir, seed: int = 0, n_pc_samples: int = 2000) -> Path:
    """Evaluate a fit on the ``test`` trials of ``dataset``; write ``out_dir``.

    :func:`compute_evaluation` computes everything in memory (for notebooks and benchmark
    scripts); this function writes its result as the evaluation folder.

    Args:
        fit_dir: fit folder (``disrnn.fit.load_fit``) or an object with the Fit contract.
        dataset: the dataset the fit was trained on (path or ``xr.Dataset``).
        out_dir: evaluation folder (replaced atomically).
        seed: seed of the Monte Carlo PC/TC estimate and of the sampled rollout.
        n_pc_samples: Monte Carlo samples for PC and TC.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        FileNotFoundError: no fit or dataset; ValueError: no ``split`` coordinate, no test
        trials, or a dataset that does not match the fit.

    ``metrics.json`` keys (all metrics on the test trials, valid bins = observed (``mask``)
    and not among the first L history-only bins; ``null`` = not applicable):

    - identity: ``method``, ``seed`` (the fit's seed), ``eval_seed``, ``fit_dir``,
      ``dataset`` (absolute paths), ``session`` (dataset attrs ``session``, else the file
      stem, or the folder name for the workflow's ``{session}/dataset.nc``), ``groups`` ("3,3"), ``kind``,
      ``likelihood``, the dataset attrs ``source dandiset dandiset_version asset_path
      nwb_path sha256 bin_width alignment``, ``n_test_trials``, ``n_test_bins``, ``n_units``,
      ``n_heldout``, ``history``; from the fit folder ``beta``, ``alpha``, ``fit_seconds``,
      ``epochs`` (run), ``best_epoch``.
    - likelihood: ``test_ll_per_bin_neuron`` mean log p(x | z = mu) per bin and unit (nats,
      log x! included); ``test_ll_per_bin`` the same summed over units; with held-out units
      also ``test_ll_heldin_per_bin_neuron`` / ``test_ll_heldout_per_bin_neuron``.
    - spikes only: ``bps`` bits per spike of the one-step predicted rates over all units,
      Poisson, null = each unit's mean training count per bin; ``bps_heldin``; ``co_bps``
      the same over held-out units (NLB co-bps; null from the training trials).
    - ``recon_r2`` pooled (variance-weighted) R^2 of the one-step prediction,
      ``recon_r2_unit_mean`` mean of per-unit R^2; ``rate_r2_true`` R^2 of the predicted
      against the true rates / noiseless means (simulations).
    - the evaluation partition of the latents into groups, ``group_partition``: ``"fit"``
      (the fit's own groups), unless the truth is known, has the same rank K and a different
      number of groups than the fit (lrRNN, LINT, ICA: one group; DisRNN-full: K groups of
      one): then ``"contiguous"``, the latents split in order into groups of the true sizes,
      so every method gets a comparable PC and group R^2 (as a benchmark with known group
      sizes does). ``partition_sizes`` ("3,3") the sizes of that partition.
    - ``pc`` PC between the groups of the evaluation partition, ``tc`` total correlation
      (one group per latent): Monte Carlo over the Gaussian aggregated posterior of the test
      bins with sd ``sigma_q`` (:func:`~disrnn.evaluation.metrics.aggregated_posterior_pc`);
      ``sigma_q``.
    - truth (``true_latents`` in the dataset), all with the evaluation partition:
      ``group_latent_r2`` (R^2 of the matched concatenation), ``group_latent_r2_cv`` (maps
      fitted on alternate test trials, scored on the others), ``component_latent_r2`` (mean
      over true dims, affine map from the matched group), ``group_r2_matched`` {true group:
      R^2}, ``group_matching`` ("inf->true,..."); independent of the partition:
      ``group_latent_r2_own_groups`` (the fit's own groups, strictly as the issue defines
      it), ``group_latent_r2_best_partition`` (single latents assigned to true groups with
      the true sizes, :func:`~disrnn.evaluation.alignment.best_partition`; chosen with the
      truth, a heuristic that need not beat the contiguous split; null when ranks differ), ``component_latent_r2_single`` (1-to-1 matched
      single latents), ``latent_r2_global`` (one affine map from all inferred to all true
      latents: the ceiling of any grouping).
    - connectivity (linear encoder and decoder; else null): ``J_offblock_frac`` (fraction
      of ||J||_F^2 outside the evaluation partition's blocks), ``J_spectral_radius``,
      ``J_eig_max_real``; with ``true_A``/``true_B``: ``W_{mae,rmse,r2,pearson}`` (W vs the
      true A B, over held-in input columns), ``Wsub_*`` (sub-connectivities W_g of the
      evaluation partition vs the matched true ones, mean over matched groups), ``Wg{t}_*``
      per matched true group t. ``connectivity.nc`` always holds the fit's own groups.
    - behavior (variables with attrs kind = "behavior"): ``behavior_r2`` {name: {"all": R^2,
      "g{label}": R^2 per latent group}}: 5-fold (over test trials) cross-validated ridge.
    - generation: ``kstep_r2`` / ``kstep_bps`` {k: value} k-step-ahead quality (see
      :func:`~disrnn.evaluation.rollout.kstep_ahead`); free-running sampled rollouts vs the
      observed test trials: ``freerun_rate_pearson``, ``freerun_rate_rmse``,
      ``freerun_rate_rel_err``, ``freerun_psth_r2`` (condition-averaged), ``freerun_corr_pearson``,
      ``freerun_corr_rmse``; ``freerun_mean_psth_r2`` for the mean-feedback rollout; and the
      same statistics of the observed training trials vs the test trials as a reference
      ceiling: ``reference_rate_pearson``, ``reference_psth_r2``, ``reference_corr_pearson``.
    """
    m, files = compute_evaluation(fit_dir, dataset, seed=seed, n_pc_samples=n_pc_samples)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        with atomic_file(tmp / "metrics.json") as f:
            f.write_text(json.dumps(_sanitize(m), indent=2, allow_nan=False) + "\n")
        for name, nc in files.items():
            save_dataset(nc, tmp / name)
    return out_dir


def compute_evaluation(
    fit, dataset, seed: int = 0, n_pc_samples: int = 2000
) -> tuple[dict, dict[str, xr.Dataset]]:
    """Everything :func:`evaluate` writes, in memory.

    Args:
        fit: a Fit, or a fit folder; dataset: path or ``xr.Dataset``; seed, n_pc_samples:
            as for :func:`evaluate`.

    Returns:
        (metrics, files): the ``metrics.json`` dict (NaN not yet replaced by None) and
        ``{"latents.nc": ..., "connectivity.nc": ..., "rollout.nc": ...}``.

    Raises:
        as :func:`evaluate`.
    """
    fit_dir = fit
    fit = _load_fit(fit)
    ds, ds_path = _load(dataset)
    if "split" not in ds.coords:
        raise ValueError("the dataset has no 'split' coordinate; build it with `disrnn bin`")
    split = np.asarray(ds["split"].values).astype(str)
    test, train = split == "test", split == "train"
    if not test.any():
        raise ValueError(f"the dataset has no test trials (splits: {sorted(set(split))})")
    kind = _kind(ds)
    L = history_length(fit, ds)
    dt = ds.isel(trial=np.flatnonzero(test))
    dtr = ds.isel(trial=np.flatnonzero(train)) if train.any() else None
    heldout = (
        np.asarray(ds["heldout"].values).astype(bool)
        if "heldout" in ds.coords
        else np.zeros(ds.sizes["unit"], bool)
    )
    x = dt["activity"].transpose("trial", "time", "unit").values.astype(float)
    ok = valid_bins(dt, L)  # (trial, time)
    null_rate = _null_rate(dtr if dtr is not None else dt, L)

    config = getattr(fit, "config", None)
    m: dict = {
        "method": getattr(config, "method", None),
        "seed": getattr(fit, "seed", None),
        "eval_seed": int(seed),
        "fit_dir": _abs(getattr(fit, "path", fit_dir)),
        "dataset": _abs(ds_path),
        "session": _session(ds, ds_path),
        "groups": ",".join(str(g) for g in getattr(fit, "groups", ())),
        "kind": kind,
        "likelihood": getattr(config, "likelihood", None),
        **{k: _jsonable(ds.attrs.get(k)) for k in _SESSION_ATTRS},
        "n_test_trials": int(test.sum()),
        "n_test_bins": int(ok.sum()),
        "n_units": int(ds.sizes["unit"]),
        "n_heldout": int(heldout.sum()),
        "history": L,
        **_fit_info(fit),
    }
    _check_same_data(fit, ds)

    # ---------------------------------------------- one-step likelihood and prediction
    pred = fit.predict(dt).transpose("trial", "time", "unit").values
    ll = -fit.nll(dt).transpose("trial", "time", "unit").values
    ll_ok = ok[..., None] & np.isfinite(ll)
    m["test_ll_per_bin_neuron"] = _masked_mean(ll, ll_ok)
    m["test_ll_per_bin"] = m["test_ll_per_bin_neuron"] * ds.sizes["unit"]
    per_unit = {
        "ll_per_unit": np.array(
            [_masked_mean(ll[..., u], ll_ok[..., u]) for u in range(x.shape[2])]
        )
    }
    if heldout.any():
        m["test_ll_heldin_per_bin_neuron"] = _masked_mean(ll[..., ~heldout], ll_ok[..., ~heldout])
        m["test_ll_heldout_per_bin_neuron"] = _masked_mean(ll[..., heldout], ll_ok[..., heldout])
    spikes = kind == "spike_counts"
    m["bps"] = mt.bits_per_spike(x, pred, null_rate, ok[..., None]) if spikes else None
    m["bps_heldin"] = (
        mt.bits_per_spike(x[..., ~heldout], pred[..., ~heldout], null_rate[~heldout], ok[..., None])
        if spikes and heldout.any()
        else None
    )
    m["co_bps"] = (
        mt.bits_per_spike(x[..., heldout], pred[..., heldout], null_rate[heldout], ok[..., None])
        if spikes and heldout.any()
        else None
    )
    if spikes:
        per_unit["bps_per_unit"] = np.array(
            [
                mt.bits_per_spike(x[..., u], pred[..., u], null_rate[u], ok)
                for u in range(x.shape[2])
            ]
        )
    r2u, m["recon_r2"] = mt.r2_per_unit(x, pred, ok[..., None])
    per_unit["recon_r2_per_unit"] = r2u
    m["recon_r2_unit_mean"] = float(np.nanmean(r2u)) if np.isfinite(r2u).any() else None
    true_rates = None
    if "true_rates" in dt:
        true_rates = dt["true_rates"].transpose("trial", "time", "unit").values.astype(float)
        m["rate_r2_true"] = mt.r2_per_unit(true_rates, pred, ok[..., None])[1]
    else:
        m["rate_r2_true"] = None

    # ------------------------------------------------------------------ latents, PC, TC
    lat = fit.latents(ds).transpose("trial", "time", "latent")
    z_all = lat.values  # (trial, time, latent), every trial
    z_test = z_all[test]
    labels = np.asarray(getattr(fit, "latent_group", np.zeros(z_all.shape[2], int))).astype(int)
    mu = al.flatten_latents(z_test, ok)  # (sample, latent)
    sigma = _sigma_q(fit, ds, train, L, z_all.shape[2])
    partition, m["group_partition"] = _eval_partition(labels, ds)
    m["partition_sizes"] = ",".join(str(int((partition == g).sum())) for g in np.unique(partition))
    m["sigma_q"] = sigma
    finite = np.isfinite(mu).all(1)
    if finite.sum() >= 2:
        m["pc"] = mt.aggregated_posterior_pc(mu, sigma, partition, n_pc_samples, seed)
        m["tc"] = mt.aggregated_posterior_pc(mu, sigma, np.arange(mu.shape[1]), n_pc_samples, seed)
    else:
        m["pc"] = m["tc"] = None

    # ---------------------------------------------------------------------- the truth
    lat_vars = {
        "latents": (("trial", "time", "latent"), z_all),
    }
    matching = None
    truth_keys = (
        "group_latent_r2",
        "group_latent_r2_cv",
        "group_latent_r2_own_groups",
        "group_latent_r2_best_partition",
        "component_latent_r2",
        "component_latent_r2_single",
        "latent_r2_global",
        "group_r2_matched",
        "group_matching",
    )
    m.update(dict.fromkeys(truth_keys))
    if "true_latents" in ds:
        tl = ds["true_latents"].transpose("trial", "time", ...)
        true_groups = (
            np.asarray(tl["latent_group"].values).astype(int)
            if "latent_group" in tl.coords
            else np.zeros(tl.shape[2], int)
        )
        zt_all = tl.values.astype(float)
        zt = al.flatten_latents(zt_all[test], ok)
        res = al.align_groups(mu, partition, zt, true_groups)
        matching = res.matching
        m["group_latent_r2"] = res.group_r2
        m["group_latent_r2_own_groups"] = (
            res.group_r2
            if m["group_partition"] == "fit"
            else al.align_groups(mu, labels, zt, true_groups).group_r2
        )
        if mu.shape[1] == zt.shape[1]:
            best = al.best_partition(mu, zt, true_groups)
            m["group_latent_r2_best_partition"] = al.align_groups(
                mu, best, zt, true_groups
            ).group_r2
        m["component_latent_r2"] = res.component_r2_mean
        m["component_latent_r2_single"] = float(np.mean(al.component_r2(mu, zt)))
        m["latent_r2_global"] = al.affine_r2(mu[finite], zt[finite])
        m["group_r2_matched"] = {str(t): v for t, v in res.matched_r2.items()}
        m["group_matching"] = ",".join(f"{i}->{t}" for i, t in res.matching)
        half = (np.arange(int(test.sum())) % 2 == 0)[:, None] & ok  # alternate test trials
        try:
            cv = al.align_groups(mu, partition, zt, true_groups, train=half[ok])
            m["group_latent_r2_cv"] = cv.group_r2
        except ValueError:
            m["group_latent_r2_cv"] = None
        lat_vars["true_latents"] = (("trial", "time", "true_latent"), zt_all)
        lat_vars["aligned_latents"] = (
            ("trial", "time", "true_latent"),
            _aligned(z_all, partition, mu, zt, true_groups, matching),
        )

    # ------------------------------------------------------------------- connectivity
    A, B = getattr(fit, "A", None), getattr(fit, "B", None)
    if A is not None and B is not None:
        has_truth = "true_A" in ds and "true_B" in ds
        tgroups = None
        if has_truth and "true_latents" in ds and "latent_group" in ds["true_latents"].coords:
            tgroups = ds["true_latents"]["latent_group"].values
        tA = ds["true_A"].transpose("unit", ...).values if has_truth else None
        tB = ds["true_B"].transpose(..., "unit").values if has_truth else None
        m.update(connectivity_summary(A, B, partition, tA, tB, tgroups, matching, columns=~heldout))
        own = matching if m["group_partition"] == "fit" else None  # matching of the fit's groups
        conn = connectivity_dataset(A, B, labels, ds["unit"].values, tA, tB, tgroups, own)
    else:
        m.update(dict.fromkeys(_CONN_KEYS))
        conn = xr.Dataset(attrs={"available": 0, "reason": "MLP encoder or decoder: no W, J"})
    for k in ("W", "Wsub"):
        for s in ("mae", "rmse", "r2", "pearson"):
            m.setdefault(f"{k}_{s}", None)

    # ----------------------------------------------------------------------- behavior
    beh = [n for n, v in ds.data_vars.items() if v.attrs.get("kind") == "behavior"]
    if beh:
        trial_id = np.broadcast_to(np.arange(int(test.sum()))[:, None], ok.shape)[ok]
        m["behavior_r2"] = {}
        for name in beh:
            y = ds[name].transpose("trial", "time", ...).values[test].astype(float)
            y = y.reshape(y.shape[0], y.shape[1], -1)[ok]  # (sample, dim)
            scores = {"all": mt.ridge_decoding_r2(mu, y, trial_id)}
            for g in np.unique(labels):
                scores[f"g{g}"] = mt.ridge_decoding_r2(mu[:, labels == g], y, trial_id)
            m["behavior_r2"][name] = scores
    else:
        m["behavior_r2"] = None

    # --------------------------------------------------------------------- generation
    gm, ks, roll_mean, roll_sample = generation_metrics(fit, dt, dtr, null_rate, kind, seed)
    m.update(gm)

    # ------------------------------------------------------------------------ writing
    trial_coords = {"trial": ds["trial"].values, "split": ("trial", split)}
    if "condition" in ds.coords and ds["condition"].dims == ("trial",):
        trial_coords["condition"] = ("trial", np.asarray(ds["condition"].values))
    lat_ds = xr.Dataset(
        lat_vars,
        coords={
            **trial_coords,
            "time": ds["time"].values,
            "latent": np.arange(z_all.shape[2]),
            "latent_group": ("latent", labels),
        },
        attrs=clean_attrs({"method": m["method"], "seed": m["seed"], "history": L}),
    )
    if "true_latents" in lat_vars:
        lat_ds = lat_ds.assign_coords(
            true_latent=np.arange(lat_vars["true_latents"][1].shape[2]),
            true_latent_group=("true_latent", true_groups),
        )
    roll = rollout_dataset(
        dt,
        {"observed": x, "predicted": pred, "rollout_mean": roll_mean, "rollout_sample": roll_sample}
        | ({} if true_rates is None else {"true_rates": true_rates}),
        ok,
        {"null_rate": null_rate, **per_unit},
        ks,
        attrs={"kind": kind, "history": L, "eval_seed": int(seed)},
    )

    return m, {"latents.nc": lat_ds, "connectivity.nc": conn, "rollout.nc": roll}


# --------------------------------------------------------------------------- helpers


def _eval_partition(labels: np.ndarray, ds: xr.Dataset) -> tuple[np.ndarray, str]:
    """(latent,) group labels used for PC and group R^2, and its name (see evaluate)."""
    if "true_latents" not in ds:
        return labels, "fit"
    tl = ds["true_latents"]
    if "latent_group" not in tl.coords or tl.shape[-1] != labels.size:
        return labels, "fit"
    true_labels = np.asarray(tl["latent_group"].values)
    if np.unique(true_labels).size == np.unique(labels).size:
        return labels, "fit"
    sizes = np.bincount(np.unique(true_labels, return_inverse=True)[1])
    return al.contiguous_labels(sizes), "contiguous"


def _aligned(z_all, labels, mu, zt, true_groups, matching) -> np.ndarray:
    """(trial, time, true_latent): matched groupwise affine maps (fitted on ``mu``->``zt``)."""
    ok = np.isfinite(mu).all(1) & np.isfinite(zt).all(1)
    out = np.full(z_all.shape[:2] + (zt.shape[1],), np.nan)
    for gi, gt in matching:
        ci, ct = labels == gi, true_groups == gt
        M, c = al.affine_fit(mu[ok][:, ci], zt[ok][:, ct])
        out[..., ct] = z_all[..., ci] @ M + c
    return out


def _masked_mean(a: np.ndarray, ok: np.ndarray) -> float | None:
    return float(a[ok].mean()) if ok.any() else None


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def _sanitize(obj):
    """NaN/inf -> None, numpy -> Python, recursively."""
    if isinstance(obj, dict):
        return {str(k): _sanitize(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_sanitize(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _sanitize(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
