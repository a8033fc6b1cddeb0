"""The steps of :func:`disrnn.evaluation.evaluate.compute_evaluation`, one function each.

Each ``*_metrics`` function computes one group of the metrics.json keys (documented in
:func:`disrnn.evaluation.evaluate.evaluate`) into the dict ``m`` it is given, from an
:class:`EvalSplit` (the dataset cut into test and training trials) and, after
:func:`latent_metrics`, a :class:`LatentSet`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from disrnn.data.io import DIMS, behavior_variables, clean_attrs
from disrnn.evaluation import alignment as al
from disrnn.evaluation import metrics as mt
from disrnn.evaluation.connectivity import connectivity_dataset, connectivity_summary
from disrnn.evaluation.decoding import condition_decoding, latent_behavior_r2
from disrnn.evaluation.inputs import null_rate, posterior_scale, sigma_q
from disrnn.evaluation.pc import aggregated_posterior_pc
from disrnn.evaluation.rollout import history_length
from disrnn.evaluation.spike_smoothing import heldout_psth_r2
from disrnn.fit.tensors import dataset_kind, valid_bins

__all__ = [
    "EvalSplit",
    "LatentSet",
    "behavior_metrics",
    "condition_labels",
    "condition_metrics",
    "connectivity_metrics",
    "latent_metrics",
    "latents_dataset",
    "one_step_metrics",
    "truth_metrics",
]

CONDITION_KEYS = ("condition_accuracy", "condition_accuracy_time_mean", "condition_chance")
CONN_KEYS = ("J_offblock_frac", "J_spectral_radius", "J_eig_max_real")
TRUTH_KEYS = (
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


@dataclasses.dataclass
class EvalSplit:
    """The dataset cut for evaluation: test and training trials, valid test bins."""

    ds: xr.Dataset
    split: np.ndarray  # (trial,) str
    test: np.ndarray  # (trial,) bool
    train: np.ndarray  # (trial,) bool
    kind: str
    L: int
    dt: xr.Dataset  # the test trials
    dtr: xr.Dataset | None  # the training trials
    heldout: np.ndarray  # (unit,) bool
    x: np.ndarray  # (test trial, time, unit) float activity
    ok: np.ndarray  # (test trial, time) bool: scored bins
    null_rate: np.ndarray  # (unit,) mean training activity per valid bin

    @classmethod
    def of(cls, fit, ds: xr.Dataset, scored: str = "test") -> EvalSplit:
        """The cut for scoring the ``scored`` trials (``test``; model selection: ``val``),
        which the fields named ``test``/``dt`` then hold."""
        if "split" not in ds.coords:
            raise ValueError("the dataset has no 'split' coordinate; build it with `disrnn bin`")
        split = np.asarray(ds["split"].values).astype(str)
        test, train = split == scored, split == "train"
        if not test.any():
            raise ValueError(f"the dataset has no {scored} trials (splits: {sorted(set(split))})")
        L = history_length(fit, ds)
        dt = ds.isel(trial=np.flatnonzero(test))
        dtr = ds.isel(trial=np.flatnonzero(train)) if train.any() else None
        heldout = (
            np.asarray(ds["heldout"].values).astype(bool)
            if "heldout" in ds.coords
            else np.zeros(ds.sizes["unit"], bool)
        )
        x = dt["activity"].transpose(*DIMS).values.astype(float)
        nr = null_rate(dtr if dtr is not None else dt, L)
        kind = dataset_kind(ds)
        return cls(ds, split, test, train, kind, L, dt, dtr, heldout, x, valid_bins(dt, L), nr)


def one_step_metrics(fit, ev: EvalSplit, m: dict) -> tuple[np.ndarray, dict, np.ndarray | None]:
    """Likelihood, bits per spike and R^2 of the one-step prediction, into ``m``.

    Returns (pred (trial, time, unit), per-unit arrays, true rates or None)."""
    x, ok, heldout, nr = ev.x, ev.ok, ev.heldout, ev.null_rate
    pred = fit.predict(ev.dt).transpose(*DIMS).values
    ll = -fit.nll(ev.dt).transpose(*DIMS).values
    ll_ok = ok[..., None] & np.isfinite(ll)
    m["test_ll_per_bin_neuron"] = _masked_mean(ll, ll_ok)
    m["test_ll_per_bin"] = m["test_ll_per_bin_neuron"] * ev.ds.sizes["unit"]
    per_unit = {
        "ll_per_unit": np.array(
            [_masked_mean(ll[..., u], ll_ok[..., u]) for u in range(x.shape[2])]
        )
    }
    if heldout.any():
        m["test_ll_heldin_per_bin_neuron"] = _masked_mean(ll[..., ~heldout], ll_ok[..., ~heldout])
        m["test_ll_heldout_per_bin_neuron"] = _masked_mean(ll[..., heldout], ll_ok[..., heldout])
    spikes = ev.kind == "spike_counts"
    m["bps"] = mt.bits_per_spike(x, pred, nr, ok[..., None]) if spikes else None
    m["bps_heldin"] = m["co_bps"] = m["co_bps_null_shift"] = m["co_psth_r2"] = None
    if spikes and heldout.any():
        m["co_psth_r2"] = heldout_psth_r2(ev.ds, ev.test, pred[..., heldout], ok)
        m["bps_heldin"] = mt.bits_per_spike(
            x[..., ~heldout], pred[..., ~heldout], nr[~heldout], ok[..., None]
        )
        m["co_bps"] = mt.bits_per_spike(
            x[..., heldout], pred[..., heldout], nr[heldout], ok[..., None]
        )
        m["co_bps_null_shift"] = mt.null_shift(x[..., heldout], nr[heldout], ok[..., None])
    if spikes:
        per_unit["bps_per_unit"] = np.array(
            [mt.bits_per_spike(x[..., u], pred[..., u], nr[u], ok) for u in range(x.shape[2])]
        )
    r2u, m["recon_r2"] = mt.r2_per_unit(x, pred, ok[..., None])
    per_unit["recon_r2_per_unit"] = r2u
    m["recon_r2_unit_mean"] = float(np.nanmean(r2u)) if np.isfinite(r2u).any() else None
    true_rates = None
    m["rate_r2_true"] = None
    if "true_rates" in ev.dt:
        true_rates = ev.dt["true_rates"].transpose(*DIMS).values.astype(float)
        m["rate_r2_true"] = mt.r2_per_unit(true_rates, pred, ok[..., None])[1]
    return pred, per_unit, true_rates


@dataclasses.dataclass
class LatentSet:
    z_all: np.ndarray  # (trial, time, latent) every trial
    labels: np.ndarray  # (latent,) the fit's groups
    mu: np.ndarray  # (sample, latent) valid test bins
    partition: np.ndarray  # (latent,) the evaluation partition
    finite: np.ndarray  # (sample,) bool
    variables: dict = dataclasses.field(default_factory=dict)  # of latents.nc
    true_groups: np.ndarray | None = None


def latent_metrics(fit, ev: EvalSplit, m: dict, n_pc_samples: int, seed: int) -> LatentSet:
    """Latents of every trial; PC and TC of the test bins' aggregated posterior, into ``m``."""
    z_all = fit.latents(ev.ds).transpose("trial", "time", "latent").values
    default = np.zeros(z_all.shape[2], int)
    labels = np.asarray(getattr(fit, "latent_group", default)).astype(int)
    mu = al.flatten_latents(z_all[ev.test], ev.ok)  # (sample, latent)
    sigma = sigma_q(fit, ev.ds, ev.train, ev.L, z_all.shape[2])
    partition, m["group_partition"] = _eval_partition(labels, ev.ds)
    m["partition_sizes"] = ",".join(str(int((partition == g).sum())) for g in np.unique(partition))
    m["sigma_q"] = sigma
    scale = posterior_scale(fit, ev.ds, ev.train, ev.L, z_all.shape[2])
    finite = np.isfinite(mu).all(1)
    if finite.sum() >= 2:
        m["pc"] = aggregated_posterior_pc(mu, scale, partition, n_pc_samples, seed)
        m["tc"] = aggregated_posterior_pc(mu, scale, np.arange(mu.shape[1]), n_pc_samples, seed)
    else:
        m["pc"] = m["tc"] = None
    lat = LatentSet(z_all, labels, mu, partition, finite)
    lat.variables["latents"] = (("trial", "time", "latent"), z_all)
    return lat


def truth_metrics(ev: EvalSplit, lat: LatentSet, m: dict) -> list | None:
    """Latent recovery against ``true_latents`` (when known), into ``m``; the matching."""
    m.update(dict.fromkeys(TRUTH_KEYS))
    if "true_latents" not in ev.ds:
        return None
    ds, mu, partition = ev.ds, lat.mu, lat.partition
    tl = ds["true_latents"].transpose("trial", "time", ...)
    true_groups = (
        np.asarray(tl["latent_group"].values).astype(int)
        if "latent_group" in tl.coords
        else np.zeros(tl.shape[2], int)
    )
    zt_all = tl.values.astype(float)
    zt = al.flatten_latents(zt_all[ev.test], ev.ok)
    res = al.align_groups(mu, partition, zt, true_groups)
    m["group_latent_r2"] = res.group_r2
    m["group_latent_r2_own_groups"] = (
        res.group_r2
        if m["group_partition"] == "fit"
        else al.align_groups(mu, lat.labels, zt, true_groups).group_r2
    )
    if mu.shape[1] == zt.shape[1]:
        best = al.best_partition(mu, zt, true_groups)
        m["group_latent_r2_best_partition"] = al.align_groups(mu, best, zt, true_groups).group_r2
    m["component_latent_r2"] = res.component_r2_mean
    m["component_latent_r2_single"] = float(np.mean(al.component_r2(mu, zt)))
    m["latent_r2_global"] = al.affine_r2(mu[lat.finite], zt[lat.finite])
    m["group_r2_matched"] = {str(t): v for t, v in res.matched_r2.items()}
    m["group_matching"] = ",".join(f"{i}->{t}" for i, t in res.matching)
    half = (np.arange(int(ev.test.sum())) % 2 == 0)[:, None] & ev.ok  # alternate test trials
    try:
        cv = al.align_groups(mu, partition, zt, true_groups, train=half[ev.ok])
        m["group_latent_r2_cv"] = cv.group_r2
    except ValueError:
        m["group_latent_r2_cv"] = None
    lat.true_groups = true_groups
    lat.variables["true_latents"] = (("trial", "time", "true_latent"), zt_all)
    lat.variables["aligned_latents"] = (
        ("trial", "time", "true_latent"),
        _aligned(lat.z_all, partition, mu, zt, true_groups, res.matching),
    )
    return res.matching


def connectivity_metrics(fit, ev: EvalSplit, lat: LatentSet, matching, m: dict) -> xr.Dataset:
    """W, J and their agreement with the truth, into ``m``; the connectivity.nc Dataset."""
    ds = ev.ds
    A, B = getattr(fit, "A", None), getattr(fit, "B", None)
    if A is not None and B is not None:
        has_truth = "true_A" in ds and "true_B" in ds
        tgroups = None
        if has_truth and "true_latents" in ds and "latent_group" in ds["true_latents"].coords:
            tgroups = ds["true_latents"]["latent_group"].values
        tA = ds["true_A"].transpose("unit", ...).values if has_truth else None
        tB = ds["true_B"].transpose(..., "unit").values if has_truth else None
        m.update(
            connectivity_summary(
                A, B, lat.partition, tA, tB, tgroups, matching, columns=~ev.heldout
            )
        )
        own = matching if m["group_partition"] == "fit" else None  # matching of the fit's groups
        conn = connectivity_dataset(A, B, lat.labels, ds["unit"].values, tA, tB, tgroups, own)
    else:
        m.update(dict.fromkeys(CONN_KEYS))
        conn = xr.Dataset(attrs={"available": 0, "reason": "MLP encoder or decoder: no W, J"})
    for k in ("W", "Wsub"):
        for s in ("mae", "rmse", "r2", "pearson"):
            m.setdefault(f"{k}_{s}", None)
    return conn


def behavior_metrics(fit, ev: EvalSplit, lat: LatentSet, m: dict, pred: np.ndarray) -> None:
    """Decoding of each behavior variable, into ``m``: ``behavior_r2`` (cross-validated
    ridge from the test latents, per bin, from their running sum and per group:
    :func:`~disrnn.evaluation.decoding.latent_behavior_r2`) and ``behavior_r2_nlb``
    (NLB's protocol: ridge from the predicted rates ``pred`` (test trial, time, unit), fit
    on the training trials)."""
    ds, ok = ev.ds, ev.ok
    beh = behavior_variables(ds)
    if not beh:
        m["behavior_r2"] = m["behavior_r2_nlb"] = None
        return
    m["behavior_r2_nlb"] = _nlb_behavior(fit, ev, beh, pred)
    z = lat.z_all[ev.test]
    m["behavior_r2"] = {
        name: latent_behavior_r2(
            z, ok, ds[name].transpose("trial", "time", ...).values[ev.test], lat.labels
        )
        for name in beh
    }


def _nlb_behavior(fit, ev: EvalSplit, names: list[str], pred: np.ndarray) -> dict | None:
    """{name: NLB decoding R^2} from the one-step rates; None without training trials."""
    return nlb_behavior_r2(fit.predict, ev.dtr, ev.dt, ev.L, pred[ev.ok])


def nlb_behavior_r2(predict, dtr, dt, L: int, pred_test=None) -> dict | None:
    """{behavior variable: NLB's decoding R^2} of a model's rates of every unit.

    ``predict(ds)`` -> (trial, time, unit) rates; ridge from the rates of the training
    trials ``dtr``'s scored bins (``valid_bins`` with history ``L``) to each behavior
    variable, scored on the test trials ``dt``'s (:func:`~disrnn.evaluation.metrics.
    nlb_decoding_r2`). ``pred_test``: (scored test bin, unit) rates already computed.
    None without training trials or behavior variables.
    """
    names = behavior_variables(dt)
    if dtr is None or not names:
        return None
    ok_tr, ok_te = valid_bins(dtr, L), valid_bins(dt, L)
    rates_tr = predict(dtr).transpose(*DIMS).values[ok_tr]
    rates_te = predict(dt).transpose(*DIMS).values[ok_te] if pred_test is None else pred_test
    out = {}
    for name in names:
        ys = [d[name].transpose("trial", "time", ...).values.astype(float) for d in (dtr, dt)]
        ytr, yte = (y.reshape(y.shape[0], y.shape[1], -1) for y in ys)
        out[name] = mt.nlb_decoding_r2(rates_tr, ytr[ok_tr], rates_te, yte[ok_te])
    return out


def condition_labels(ds: xr.Dataset) -> np.ndarray | None:
    """(trial,) labels of the trial coord ``condition`` with >= 2 classes, else None."""
    if "condition" not in ds.coords or ds["condition"].dims != ("trial",):
        return None
    labels = np.asarray(ds["condition"].values)
    return labels if np.unique(labels.astype(str)).size >= 2 else None


def condition_metrics(ev: EvalSplit, lat: LatentSet, m: dict, seed: int) -> None:
    """Decoding of each trial's ``condition`` from the fit's latents, into ``m``.

    :func:`~disrnn.evaluation.decoding.condition_decoding` (train + val -> test trials) on
    the latents of the scored bins of every trial (``valid_bins`` with the fit's L; the
    others, history-only bins whose latents are NaN and unobserved bins, set to NaN and
    skipped). Keys ``condition_accuracy``, ``condition_accuracy_time_mean``,
    ``condition_chance`` (null without a ``condition`` of >= 2 classes); the per-bin
    accuracy goes to latents.nc as ``condition_accuracy_by_time`` (time).
    """
    m.update(dict.fromkeys(CONDITION_KEYS))
    labels = condition_labels(ev.ds)
    if labels is None:
        return
    z = np.where(valid_bins(ev.ds, ev.L)[..., None], lat.z_all, np.nan)
    dec = condition_decoding(z, labels.astype(str), ev.split, seed=seed)
    m.update({k: dec[k] for k in CONDITION_KEYS})
    lat.variables["condition_accuracy_by_time"] = (("time",), dec["condition_accuracy_by_time"])


def latents_dataset(ev: EvalSplit, lat: LatentSet, m: dict) -> xr.Dataset:
    """latents.nc: the latents of every trial (and the truth, aligned, when known)."""
    ds = ev.ds
    trial_coords = {"trial": ds["trial"].values, "split": ("trial", ev.split)}
    if "condition" in ds.coords and ds["condition"].dims == ("trial",):
        trial_coords["condition"] = ("trial", np.asarray(ds["condition"].values))
    lat_ds = xr.Dataset(
        lat.variables,
        coords={
            **trial_coords,
            "time": ds["time"].values,
            "latent": np.arange(lat.z_all.shape[2]),
            "latent_group": ("latent", lat.labels),
        },
        attrs=clean_attrs({"method": m["method"], "seed": m["seed"], "history": ev.L}),
    )
    if "true_latents" in lat.variables:
        lat_ds = lat_ds.assign_coords(
            true_latent=np.arange(lat.variables["true_latents"][1].shape[2]),
            true_latent_group=("true_latent", lat.true_groups),
        )
    return lat_ds


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
