"""The evaluation's smoothing-posterior step (:func:`smoothing_posterior_metrics`), and one
posterior for fits that share W: the posterior metrics of an evaluation reused by another
fit's evaluation instead of training the same posterior again.

The smoothing posterior of a linear fit depends on the fit only through W = A B, its
bias A b + a and its link: it learns in the coordinates of the SVD of W, with the fit's
bias a fixed offset (:func:`disrnn.evaluation.cosmoothing._initial`), so it starts from
the same encoder and readout and trains on the same data with the same seed.
lrRNN+ICA (A' = A M^-1, B' = M B, b' = M (b - m), a' = a + A m) and LINT (A' = U_K S_K,
B' = V_K^T, b' = 0, a' = a + A b) are such re-splits of an lrRNN, so their posteriors are
the lrRNN's up to float rounding, and every posterior metric (co-bps, held-out
log-likelihood, PSTH R^2 and behavior R^2 from its rates) is a function of its rates
alone. An evaluation given the lrRNN's evaluation folder copies those metrics when

- the two evaluations read the same data with the same posterior settings and seed
  (:func:`posterior_key`: a hash of every variable the posterior reads, the evaluation
  seed and :class:`~disrnn.evaluation.smoothing_config.SmoothingConfig`'s defaults), and
- the two fits agree in W and A b + a within ``RTOL`` of each one's largest entry, and in
  likelihood, link, history and known input (:func:`posterior_difference`);

otherwise it trains its own and logs why.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import xarray as xr

from disrnn.evaluation.cosmoothing import cosmoothing_metrics, fit_smoothing_posterior
from disrnn.evaluation.inputs import as_fit
from disrnn.evaluation.smoothing_config import SmoothingConfig
from disrnn.evaluation.spike_smoothing import heldout_psth_r2
from disrnn.evaluation.steps import nlb_behavior_r2
from disrnn.fit.tensors import dataset_kind, valid_bins

__all__ = [
    "POSTERIOR_KEYS",
    "RTOL",
    "posterior_difference",
    "posterior_key",
    "shared_posterior_metrics",
    "smoothing_posterior_metrics",
]

log = logging.getLogger(__name__)

#: the metrics.json keys the smoothing posterior writes (all null where it is not fitted)
POSTERIOR_KEYS = (
    "co_bps_smoothed",
    "co_bps_smoothed_all_bins",
    "test_ll_heldout_smoothed_per_bin_neuron",
    "smoothing_posterior_seconds",
    "behavior_r2_nlb_smoothed",
    "co_psth_r2_smoothed",
)
#: largest difference of W or A b + a between two fits sharing a posterior, relative to
#: the array's largest absolute entry (a re-split of W in float32 is exact to about 1e-6)
RTOL = 1e-4
#: the variables of a dataset the posterior reads (:mod:`disrnn.evaluation.posterior_data`)
_READ = ("activity", "mask", "pre_activity", "pre_mask", "input", "heldout", "split")


def posterior_key(ds: xr.Dataset, seed: int) -> str:
    """sha256 (hex) of what a posterior trained on ``ds`` with ``seed`` reads besides the
    fit: each variable of ``_READ`` present (name, shape, dtype, bytes), the seed and
    ``repr(SmoothingConfig())`` (the settings every evaluation uses)."""
    h = hashlib.sha256()
    for name in _READ:
        if name in ds.variables:
            v = np.ascontiguousarray(ds[name].values)
            v = v.astype(str).astype("U") if v.dtype.kind in "OSU" else v
            h.update(f"{name}|{v.shape}|{v.dtype}|".encode())
            h.update(v.tobytes())
    h.update(f"seed={int(seed)}|{SmoothingConfig()!r}".encode())
    return h.hexdigest()


def posterior_difference(fit, other) -> str | None:
    """Why ``other``'s smoothing posterior is not ``fit``'s, or None when it is.

    Both must have a linear encoder and decoder, the same likelihood, history and known
    input, and W = A B and the bias A b + a equal within ``RTOL`` of each one's largest
    entry.
    """
    for f in (fit, other):
        if f.config.encoder != "linear" or f.config.decoder != "linear":
            return f"the fit {getattr(f, 'path', '')} has an MLP encoder or decoder"
    for name in ("likelihood", "link"):
        if getattr(fit.config, name) != getattr(other.config, name):
            return f"{name} differs ({getattr(fit.config, name)} vs {getattr(other.config, name)})"
    if fit.history != other.history or fit.uses_input != other.uses_input:
        return "history or known input differs"

    def parts(f):
        m = f.module
        A, B, b, a = (t.detach().double().numpy() for t in (m.A, m.B, m.b, m.a))
        return {"W": A @ B, "A b + a": A @ b + a}

    mine, theirs = parts(fit), parts(other)
    for name, x in mine.items():
        y = theirs[name]
        if x.shape != y.shape:
            return f"{name} has shape {x.shape} here and {y.shape} there"
        scale = max(float(np.abs(x).max(initial=0.0)), 1e-12)
        err = float(np.abs(x - y).max(initial=0.0)) / scale
        if not err <= RTOL:
            return f"{name} differs by {err:.2g} of its largest entry (tolerance {RTOL})"
    return None


def shared_posterior_metrics(fit, ds: xr.Dataset, seed: int, source) -> dict | None:
    """The posterior metrics of the evaluation folder ``source`` for ``fit`` on ``ds``,
    or None (logged at INFO with the reason) when its posterior is not ``fit``'s.

    Returns:
        ``POSTERIOR_KEYS`` copied from ``source``'s metrics.json, but
        ``smoothing_posterior_seconds`` 0.0 (none spent here), with
        ``smoothing_posterior_key`` and ``smoothing_posterior_from`` (``source``, absolute).
    """
    source = Path(source)
    path = source / "metrics.json" if source.is_dir() else source
    try:
        theirs = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        log.info("smoothing posterior not shared: cannot read %s (%s)", path, err)
        return None
    key = posterior_key(ds, seed)
    if theirs.get("smoothing_posterior_key") != key:
        log.info(
            "smoothing posterior not shared: %s was fitted on other data, settings or seed",
            path,
        )
        return None
    try:
        other = as_fit(theirs["fit_dir"])
    except (KeyError, TypeError, OSError) as err:
        log.info("smoothing posterior not shared: the fit of %s is not readable (%s)", path, err)
        return None
    why = posterior_difference(fit, other)
    if why is not None:
        log.info("smoothing posterior not shared with %s: %s", path, why)
        return None
    out = {k: theirs.get(k) for k in POSTERIOR_KEYS}
    out.update(
        smoothing_posterior_seconds=0.0,
        smoothing_posterior_key=key,
        smoothing_posterior_from=str(path.parent.resolve()),
    )
    log.info("smoothing posterior shared with %s (same W, A b + a and data)", path.parent)
    return out


def smoothing_posterior_metrics(
    fit, ds: xr.Dataset, seed: int = 0, enabled: bool = True, share_from=None
) -> dict:
    """The evaluation's smoothing-posterior keys of ``fit`` on ``ds`` (null where n/a).

    Fitted (when ``enabled``) for Poisson fits of spike counts with held-out units and
    train/val/test trials; every other fit gets ``None`` for each key of ``POSTERIOR_KEYS``
    (``co_bps_smoothed``, ``co_bps_smoothed_all_bins``,
    ``test_ll_heldout_smoothed_per_bin_neuron``,
    ``smoothing_posterior_seconds``, ``behavior_r2_nlb_smoothed``: NLB's decoding R^2 of
    each behavior variable from the posterior's rates of every unit, null without behavior,
    :func:`~disrnn.evaluation.steps.nlb_behavior_r2`; ``co_psth_r2_smoothed``: NLB's PSTH
    R^2 of its held-out rates, :func:`~disrnn.evaluation.spike_smoothing.heldout_psth_r2`).
    A fitted posterior adds ``smoothing_posterior_key`` (:func:`posterior_key`).

    share_from: an evaluation folder of a fit with the same W and A b + a (the lrRNN of a
    post-hoc method): its posterior's metrics are copied rather than training the same
    posterior again, when :func:`shared_posterior_metrics` finds it is this fit's (then
    ``smoothing_posterior_from`` names it); else the posterior is trained here.
    """
    out = dict.fromkeys(POSTERIOR_KEYS)
    split = np.asarray(ds["split"].values).astype(str) if "split" in ds.coords else np.array([])
    heldout = np.asarray(ds["heldout"].values, bool) if "heldout" in ds.coords else np.zeros(1)
    config = getattr(fit, "config", None)
    usable = (
        enabled
        and getattr(config, "likelihood", None) == "poisson"
        and dataset_kind(ds) == "spike_counts"
        and heldout.any()
        and all((split == s).any() for s in ("train", "val", "test"))
    )
    if not usable:
        return out
    if share_from is not None:
        shared = shared_posterior_metrics(fit, ds, seed, share_from)
        if shared is not None:
            return shared
    out["smoothing_posterior_key"] = posterior_key(ds, seed)
    post = fit_smoothing_posterior(fit, ds, seed=seed)
    m = cosmoothing_metrics(fit, post, ds)
    out.update(
        co_bps_smoothed=m["co_bps_smoothed"],
        co_bps_smoothed_all_bins=m["co_bps_smoothed_all_bins"],
        test_ll_heldout_smoothed_per_bin_neuron=m["heldout_ll_smoothed"] / m["n_heldout"],
        smoothing_posterior_seconds=post.info["seconds"],
    )
    dtr, dt = (ds.isel(trial=np.flatnonzero(split == s)) for s in ("train", "test"))
    L, rates = int(fit.history), post.predict(dt).transpose("trial", "time", "unit").values
    ok = valid_bins(dt, L)
    out["behavior_r2_nlb_smoothed"] = nlb_behavior_r2(post.predict, dtr, dt, L, rates[ok])
    out["co_psth_r2_smoothed"] = heldout_psth_r2(ds, split == "test", rates[..., heldout], ok)
    return out
