"""Spike smoothing and NLB's PSTH R^2: array functions of the smoothing reference.

- :func:`gaussian_kernel`, :func:`smooth_spikes` - renormalised Gaussian smoothing of
  each trial's counts, acausal (NLB's) or causal (earlier bins only).
- :func:`psth_r2_units` - NLB's PSTH R^2 of condition-averaged predictions;
  :func:`heldout_psth_r2` - the same of a model's held-out rates on the scored trials
  against every trial's PSTHs (the number the smoothing reference and every fit's
  evaluation report as ``co_psth_r2``).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import convolve1d

from disrnn.fit.tensors import bin_width, valid_bins

__all__ = [
    "PSTH_KERNEL_SD",
    "gaussian_kernel",
    "heldout_psth_r2",
    "pre_context",
    "psth_r2_units",
    "smooth_spikes",
]

#: sd (s) of the Gaussian that smooths the observed spikes into the PSTH R^2 target (NLB's
#: PSTHs are of smoothed spikes)
PSTH_KERNEL_SD = 0.05


def gaussian_kernel(sd_bins: float, truncate: float = 4.0) -> np.ndarray:
    """(2 h + 1,) normalised Gaussian ``k_j ∝ exp(-j^2 / (2 sd^2))``, h = ceil(truncate sd).

    Raises:
        ValueError: ``sd_bins`` is not positive.
    """
    if not sd_bins > 0:
        raise ValueError(f"kernel sd must be positive (in bins), got {sd_bins!r}")
    h = int(np.ceil(truncate * sd_bins))
    j = np.arange(-h, h + 1)
    k = np.exp(-0.5 * (j / sd_bins) ** 2)
    return k / k.sum()


def smooth_spikes(
    x, observed, sd_bins: float, pre=None, pre_observed=None, causal: bool = False
) -> np.ndarray:
    """Gaussian smoothing of each trial, renormalised at edges and gaps.

    ``s_t = sum_j k_j w_{t-j} x_{t-j} / sum_j k_j w_{t-j}`` with ``w`` = 1 on observed bins
    and 0 elsewhere (and outside the trial): a kernel-weighted mean of the observed bins
    near t, so the first and last bins of a trial are not biased towards 0 as a zero-padded
    convolution (NLB's ``np.convolve(..., "same")``) would be. Acausal: lags
    j = -h..h (:func:`gaussian_kernel`); ``causal``: lags j = 1..h only, so s_t is made of
    strictly earlier bins, as a one-step prediction is. Bins before the window (``pre``)
    extend the context at the trial start and are dropped afterwards.

    Args:
        x: (trial, time, unit) float counts per bin. observed: (trial, time) bool.
        sd_bins: kernel sd in bins. pre: optional (trial, pre_time, unit) counts before
            each trial's window; pre_observed: optional (trial, pre_time) bool (default all).
        causal: a half kernel over the earlier bins only.

    Returns:
        (trial, time, unit) float64 smoothed counts per bin; NaN where no observed bin lies
        within the kernel's reach (causal: at least every trial's first bin without ``pre``).
    """
    x = np.asarray(x, dtype=float)
    w = np.asarray(observed, dtype=float)
    n_pre = 0
    if pre is not None:
        pre = np.asarray(pre, dtype=float)
        pw = np.ones(pre.shape[:2]) if pre_observed is None else np.asarray(pre_observed, float)
        n_pre = pre.shape[1]
        x, w = np.concatenate([pre, x], 1), np.concatenate([pw, w], 1)
    k = gaussian_kernel(sd_bins)
    if causal:  # k[i] weighs lag j = i - h (convolve1d flips the kernel): keep j >= 1
        k = np.where(np.arange(k.size) > k.size // 2, k, 0.0)
    num = convolve1d(np.where(w[..., None] > 0, x, 0.0), k, axis=1, mode="constant")
    den = convolve1d(w, k, axis=1, mode="constant")[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(den > 1e-12, num / den, np.nan)
    return s[:, n_pre:]


def _condition_means(values, cond, ok) -> dict:
    """{condition: ((time, unit) mean over the trials of the condition where ``ok``,
    (time,) bool: bins with at least one such trial for every unit)}."""
    out = {}
    for c in np.unique(cond):
        sel = cond == c
        n = ok[sel].sum(0)  # (time, unit)
        out[c] = (np.where(ok[sel], values[sel], 0).sum(0) / np.maximum(n, 1), n.min(1) > 0)
    return out


def psth_r2_units(
    target, pred, condition=None, valid=None, target_condition=None, target_valid=None
) -> np.ndarray:
    """Per-unit R^2 of condition-averaged predictions against condition-averaged targets.

    NLB's PSTH R^2: PSTH_c(t, u) = mean over the valid trials of condition c; for each unit,
    ``R^2_u = 1 - sum_{c,t} (P_pred - P_true)^2 / sum_{c,t} (P_true - mean P_true)^2`` over
    the (condition, time) cells both PSTHs have (a condition without a predicted trial is
    left out); NLB reports the mean over units (``sklearn.metrics.r2_score`` with uniform
    averaging). The target may average other (more) trials than the prediction, as NLB's
    target PSTHs average every trial of a condition.

    Args:
        target: (trial', time, unit) smoothed observed counts; pred: (trial, time, unit)
            rates. condition: (trial,) labels of pred's trials (None: one condition);
            valid: (trial, time) bool. target_condition, target_valid: the same of the
            target's trials (default: pred's, for a target of the same trials).

    Returns:
        (unit,) float R^2 (NaN for a unit whose PSTHs have no variance).
    """
    target, pred = np.asarray(target, float), np.asarray(pred, float)
    cond = np.zeros(pred.shape[0]) if condition is None else np.asarray(condition)
    same = target_condition is None and target_valid is None
    t_cond = cond if target_condition is None else np.asarray(target_condition)
    ok_p = np.isfinite(pred) & (np.isfinite(target) if same else True)
    ok_t = np.isfinite(target) & (np.isfinite(pred) if same else True)
    if valid is not None:
        ok_p &= np.asarray(valid, bool)[..., None]
    t_valid = valid if same else target_valid
    if t_valid is not None:
        ok_t &= np.asarray(t_valid, bool)[..., None]
    means_p, means_t = _condition_means(pred, cond, ok_p), _condition_means(target, t_cond, ok_t)
    pt, pp = [], []
    for c, (mp, kp) in means_p.items():
        if c in means_t:
            keep = kp & means_t[c][1]
            pt.append(means_t[c][0][keep])
            pp.append(mp[keep])
    if not pt:  # no condition with both a prediction and a target
        return np.full(pred.shape[2], np.nan)
    pt, pp = np.concatenate(pt), np.concatenate(pp)  # (cell, unit)
    sst = ((pt - pt.mean(0)) ** 2).sum(0)
    sse = ((pt - pp) ** 2).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sst > 0, 1 - sse / sst, np.nan)


def pre_context(ds, trials: np.ndarray, units: np.ndarray):
    """(pre (trial, pre_time, unit) float counts, pre_mask (trial, pre_time) or None) of the
    given trials and units: the history binned before each window, (None, None) without it."""
    if "pre_activity" not in ds:
        return None, None
    pre = ds["pre_activity"].transpose("trial", ..., "unit").values[trials][..., units]
    pm = ds["pre_mask"].transpose("trial", ...).values[trials] if "pre_mask" in ds else None
    return pre.astype(float), pm


def heldout_psth_r2(
    ds, scored, rates, valid, labels=None, sd: float = PSTH_KERNEL_SD
) -> float | None:
    """NLB's PSTH R^2 of held-out units' predicted rates on the ``scored`` trials: the mean
    over held-out units of :func:`psth_r2_units`. The predicted PSTH of a condition
    averages the rates over its scored trials; the target PSTH averages the observed
    held-out counts, smoothed by :func:`smooth_spikes` (sd ``sd`` s; the history before
    the window as context), over *every* trial of the condition in ``ds`` (all splits, as
    NLB's target PSTHs do), so the target is not the scored trials' own noise.

    Args:
        ds: every trial of the session: ``activity`` (trial, time, unit), ``heldout``
            (unit,), ``bin_width`` attr; optional ``mask``, ``pre_activity``, ``pre_mask``.
        scored: (trial,) bool, the trials ``rates`` are of (e.g. the test trials).
        rates: (scored trial, time, held-out unit) predicted counts per bin.
        valid: (scored trial, time) bool scored bins.
        labels: (trial,) condition labels of every trial; default the ``condition`` coord.
    Returns:
        float, or None without condition labels.
    """
    if labels is None:
        labels = np.asarray(ds["condition"].values) if "condition" in ds.coords else None
    if labels is None:
        return None
    labels, scored = np.asarray(labels), np.asarray(scored, bool)
    ho = np.flatnonzero(np.asarray(ds["heldout"].values, bool))
    y = ds["activity"].transpose("trial", "time", "unit").values[..., ho].astype(float)
    pre = pre_context(ds, np.arange(ds.sizes["trial"]), ho)
    observed = valid_bins(ds, 0)
    target = smooth_spikes(y, observed, sd / bin_width(ds), *pre)
    r2 = psth_r2_units(target, rates, labels[scored], valid, labels, observed)
    return float(np.nanmean(r2))
