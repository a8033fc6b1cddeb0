"""Reference methods that any latent model must beat, scored like a fit's evaluation.

- :func:`smoothing_reference` - the Neural Latents Benchmark's smoothing baseline for
  co-smoothing: Gaussian-smoothed held-in spikes -> one Poisson GLM per held-out unit;
  and its causal twin (a kernel on earlier bins only), the like-for-like reference of a
  fit's one-step prediction, which sees only the past.
- :func:`disrnn.evaluation.pca.pca_reference` - K principal components of the held-in
  activity of the training trials as latents, with linear read-outs (continuous sessions).
- :mod:`disrnn.evaluation.spike_smoothing` - the smoothing and PSTH R^2 it uses.
- :func:`write_reference` - either result as an evaluation-style folder (``metrics.json``
  with the keys :func:`disrnn.evaluation.evaluate` uses for the same numbers; ``null``
  for latents, connectivity and PC, which a reference does not have).

Scored bins and null rates are those of the DisRNN evaluation: test trials, bins from
:func:`~disrnn.fit.tensors.valid_bins` (observed, and not among the first
``history`` bins), null = each unit's mean count per valid bin of the training trials
(``null_rate``). With ``history`` = a fit's L the numbers are scored on exactly that
fit's bins; the default 0 scores every observed bin.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from disrnn._atomic import atomic_dir, atomic_file
from disrnn.data.io import behavior_variables, clean_attrs, save_dataset
from disrnn.evaluation import metrics as mt
from disrnn.evaluation.glm import fit_predict, one_thread, search_grid, select_grid
from disrnn.evaluation.inputs import load_data, null_rate
from disrnn.evaluation.reference_inputs import (
    condition_labels,
    heldout_units,
    reference_identity,
    split_arrays,
)
from disrnn.evaluation.spike_smoothing import (
    PSTH_KERNEL_SD,
    heldout_psth_r2,
    pre_context,
    smooth_spikes,
)
from disrnn.fit.tensors import dataset_kind, valid_bins

__all__ = [
    "ALPHAS",
    "CAUSAL_KEYS",
    "CAUSAL_KERNEL_SDS",
    "KERNEL_SDS",
    "SmoothingResult",
    "smoothing_reference",
    "write_reference",
]

#: kernel standard deviations (s) tried by cross-validation; each is clipped to >= 1 bin
KERNEL_SDS = (0.02, 0.03, 0.05, 0.08, 0.12)
#: kernel sds (s) of the causal smoothing: a kernel on earlier bins only must reach back as
#: far as the state of the population is remembered (hundreds of ms), so its grid runs
#: longer than NLB's acausal one, whose kernel also sees the bins after t
CAUSAL_KERNEL_SDS = (0.02, 0.05, 0.1, 0.2, 0.4)
#: metrics.json keys of the causal smoothing (step 4 of :func:`smoothing_reference`)
CAUSAL_KEYS = (
    "co_bps_causal",
    "test_ll_heldout_per_bin_neuron_causal",
    "co_psth_r2_causal",
    "kernel_sd_causal",
    "glm_alpha_causal",
)
#: PoissonRegressor L2 penalties tried by cross-validation (standardised features); 1.0
#: lets the GLM shrink towards the null where held-in units do not predict (human MTL)
ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
FEATURES = ("rate", "sqrt", "log")
_LOG_EPS = 1e-3  # counts per bin added before the log feature


def _features(s: np.ndarray, kind: str) -> np.ndarray:
    if kind == "rate":
        return s
    if kind == "sqrt":
        return np.sqrt(np.maximum(s, 0.0))
    return np.log(np.maximum(s, 0.0) + _LOG_EPS)


@dataclass
class SmoothingResult:
    """Output of :func:`smoothing_reference`.

    Attributes:
        metrics: the ``metrics.json`` dict (NaN not yet replaced by None).
        rates: (trial, time, unit) expected counts per bin of the held-out units on the test
            trials (NaN on unobserved bins); coords ``split``, ``heldout``.
        observed: the same trials and units' spike counts.
        cv_scores: {"sd=<s>,alpha=<a>": summed held-out Poisson log-likelihood (nats) over
            the cross-validation folds}; empty when the grid has one point.
        rates_causal, cv_scores_causal: the same of the causal smoothing (None and empty
            when it was not computed).
    """

    metrics: dict
    rates: xr.DataArray
    observed: xr.DataArray
    cv_scores: dict = field(default_factory=dict)
    rates_causal: xr.DataArray | None = None
    cv_scores_causal: dict = field(default_factory=dict)


def smoothing_reference(
    dataset,
    seed: int = 0,
    condition=None,
    kernel_sds=KERNEL_SDS,
    alphas=ALPHAS,
    n_folds: int = 3,
    causal_kernel_sds=CAUSAL_KERNEL_SDS,
    features: str = "rate",
    history: int = 0,
    psth_kernel_sd: float = PSTH_KERNEL_SD,
    max_iter: int = 500,
) -> SmoothingResult:
    """NLB's smoothing baseline for co-smoothing, scored like a fit's evaluation.

    1. Held-in units' counts of every trial are smoothed by :func:`smooth_spikes` (Gaussian,
       acausal, renormalised at the trial's edges; ``pre_activity`` extends the start).
    2. One ``sklearn`` ``PoissonRegressor`` per held-out unit maps the standardised features
       f_t (``"rate"``: the smoothed counts per bin, or sqrt / log; NLB: log unscaled) to the
       unit's counts: ``log E[y_t] = w . f_t + b``, minimising ``1/(2n) sum_t
       deviance(y_t, rate_t) + alpha/2 |w|^2`` over the training trials' observed bins.
    3. (kernel sd, alpha) maximise the summed held-out Poisson log-likelihood over
       ``n_folds`` folds of the *training* trials (seeded shuffle); ties go to the first
       (smallest sd, smallest alpha). The final GLMs are refitted on all training trials.
    4. The same with ``smooth_spikes(..., causal=True)`` (features of strictly earlier
       bins; 0 where no earlier bin is observed, as a fit's masked history) and the grid
       ``causal_kernel_sds``: the reference of a fit's causal one-step prediction.

    Args:
        dataset: path or ``xr.Dataset`` with ``activity`` (trial, time, unit) spike counts,
            coords ``split`` and ``heldout``; optional ``mask``, ``pre_activity`` (trial,
            pre_time, unit) and ``pre_mask`` (trial, pre_time).
        seed: seed of the fold assignment. condition: trial coord name or (trial,) labels
            for the PSTH R^2 (default: the ``condition`` coord; none: ``co_psth_r2`` null).
        kernel_sds: kernel sds in s (each clipped to >= the bin width); alphas: penalties.
        n_folds: cross-validation folds over training trials (unused for a 1x1 grid).
        causal_kernel_sds: kernel sds (s) of step 4; None or empty: skip it (metrics null).
        features: ``"rate"`` | ``"sqrt"`` | ``"log"``. history: bins at each trial's start
            that are not scored (a fit's L, to score on its bins). psth_kernel_sd: s, the
            smoothing of the true spikes in the PSTH target. max_iter: lbfgs iterations.

    Returns:
        :class:`SmoothingResult`; ``metrics``: ``co_bps`` (null: the training mean count
        per bin; NLB's null: minus ``co_bps_null_shift``), ``test_ll_heldout_per_bin_neuron``
        (nats, log y! included), ``co_psth_r2`` (:func:`heldout_psth_r2`), ``kernel_sd``
        (s), ``glm_alpha``, ``features``, ``fit_seconds``, ``behavior_r2_nlb``, identity
        keys and nulls (``write_reference``); the ``CAUSAL_KEYS`` of step 4.

    Raises:
        ValueError: not spike counts, no held-out or held-in units, no train/test trials,
        fewer training trials than folds, a bad grid or ``features``.
    """
    t0 = time.perf_counter()
    ds, ds_path = load_data(dataset)
    train, test, ho, bw = _smoothing_inputs(ds, features)
    sds, alphas = search_grid(kernel_sds, alphas, bw)
    x = ds["activity"].transpose("trial", "time", "unit").values.astype(float)
    task = _GLMTask(ds, x, valid_bins(ds, 0), valid_bins(ds, history), ho, bw, train, test,
                    condition_labels(ds, condition), features, alphas, n_folds, seed,
                    max_iter, psth_kernel_sd, history)  # fmt: skip
    sd_best, alpha_best, cv, rates = task.fit(False, sds)  # (trial, time, held-out)
    causal, rates_c, cv_c = task.causal(causal_kernel_sds)
    te, seconds = np.flatnonzero(test), time.perf_counter() - t0  # both fits
    test_da = functools.partial(_test_da, ds, te, ho)
    m = {
        **reference_identity(ds, ds_path, "smoothing", seed, history, test, task.ok[te], ho),
        "likelihood": "poisson",
        **task.scores(rates),
        "co_bps_null_shift": task.null_shift(),
        "psth_kernel_sd": float(psth_kernel_sd),
        "kernel_sd": float(sd_best),
        "glm_alpha": float(alpha_best),
        "features": features,
        "cv_folds": int(n_folds) if cv else None,
        **causal,
        "fit_seconds": float(seconds),
        "behavior_r2_nlb": task.nlb_behavior(sd_best, rates),
        **dict.fromkeys(("recon_r2", "recon_r2_unit_mean", "behavior_r2")),
    }
    return SmoothingResult(m, test_da(rates), test_da(x[..., ho]), cv, test_da(rates_c), cv_c)


@dataclass
class _GLMTask:
    """What both smoothings of :func:`smoothing_reference` share: the dataset's arrays
    (x (trial, time, unit) counts; obs, ok (trial, time) fitted and scored bins; ho
    (unit,) held-out; train, test (trial,) bool) and the GLM settings."""

    ds: xr.Dataset
    x: np.ndarray
    obs: np.ndarray
    ok: np.ndarray
    ho: np.ndarray
    bw: float
    train: np.ndarray
    test: np.ndarray
    labels: np.ndarray | None
    features: str
    alphas: list
    n_folds: int
    seed: int
    max_iter: int
    psth_sd: float
    history: int

    def fit(self, causal: bool, sds) -> tuple[float, float, dict, np.ndarray]:
        """(kernel sd, alpha, cv scores, (trial, time, held-out) rates: NaN outside the train
        and test trials) of the GLMs on the (causally) smoothed held-in spikes, the grid
        point chosen by CV."""
        x, obs, ho, tri = self.x, self.obs, self.ho, np.flatnonzero(self.train)
        feats = _heldin_features(self.ds, x, obs, ho, self.bw, self.features, causal)
        with one_thread():
            sd, alpha, cv = select_grid(feats, tri, x[tri][..., ho], obs[tri], sds, self.alphas,
                                        self.n_folds, self.seed, self.max_iter)  # fmt: skip
            rates = _heldout_rates(feats(sd), x, obs, ho, self.train, self.test, alpha,
                                   self.max_iter)  # fmt: skip
        return sd, alpha, cv, rates

    def causal(self, sds) -> tuple[dict, np.ndarray | None, dict]:
        """(the ``CAUSAL_KEYS`` metrics, rates, cv scores) of the causal smoothing with the
        kernel sds ``sds`` (None or empty: null metrics, no rates)."""
        if sds is None or not len(np.atleast_1d(sds)):
            return dict.fromkeys(CAUSAL_KEYS), None, {}
        sd, alpha, cv, rates = self.fit(True, search_grid(sds, self.alphas, self.bw)[0])
        m = {f"{k}_causal": v for k, v in self.scores(rates).items()}
        return {**m, "kernel_sd_causal": float(sd), "glm_alpha_causal": float(alpha)}, rates, cv

    def scores(self, rates: np.ndarray) -> dict:
        """co_bps, test_ll_heldout_per_bin_neuron, co_psth_r2 of ``rates`` (trial, time,
        held-out) on the test trials."""
        tri, te = np.flatnonzero(self.train), np.flatnonzero(self.test)
        return _heldout_scores(self.ds, self.x, rates[te], self.ok[te], self.ho, tri, te,
                               self.labels, self.psth_sd, self.history)  # fmt: skip

    def null_shift(self) -> float:
        """:func:`disrnn.evaluation.metrics.null_shift` of the held-out units' scored test
        bins (the same for every co-bps on them)."""
        tri, te = np.flatnonzero(self.train), np.flatnonzero(self.test)
        null = null_rate(self.ds.isel(trial=tri), self.history)[self.ho]
        return mt.null_shift(self.x[te][..., self.ho], null, self.ok[te][..., None])

    def nlb_behavior(self, sd: float, rates: np.ndarray) -> dict | None:
        """{behavior variable: NLB's decoding R^2} of the smoothing's rates, None without
        behavior: the rates of every unit (the held-in units' counts smoothed with kernel sd
        ``sd``, the held-out units' GLM ``rates`` (trial, time, held-out)) of the training
        trials' scored bins -> ridge (:func:`~disrnn.evaluation.metrics.nlb_decoding_r2`),
        scored on the test trials' bins, as NLB scores its smoothing baseline."""
        names = behavior_variables(self.ds)
        if not names:
            return None
        heldin = _smoothed_heldin(self.ds, self.x, self.obs, self.ho, sd / self.bw, False)
        every = np.concatenate([heldin, rates], axis=-1)
        tr, te = self.train[:, None] & self.ok, self.test[:, None] & self.ok
        out = {}
        for name in names:
            y = self.ds[name].transpose("trial", "time", ...).values.astype(float)
            y = y.reshape(y.shape[0], y.shape[1], -1)
            out[name] = mt.nlb_decoding_r2(every[tr], y[tr], every[te], y[te])
        return out


def _smoothing_inputs(ds: xr.Dataset, features: str):
    """(train, test (trial,) bool, held-out units (unit,) bool, bin width in s) of a dataset
    the smoothing reference can score.

    Raises:
        ValueError: not spike counts, an unknown ``features``, no train/test trials, no
        held-out or no held-in units.
    """
    if dataset_kind(ds) != "spike_counts":
        raise ValueError(f"smoothing_reference needs spike counts, got kind {dataset_kind(ds)!r}")
    if features not in FEATURES:
        raise ValueError(f"features must be one of {FEATURES}, got {features!r}")
    _, train, test = split_arrays(ds)
    ho = heldout_units(ds)
    if not ho.any() or ho.all():
        raise ValueError(
            f"smoothing_reference needs held-out and held-in units; the dataset has "
            f"{int(ho.sum())} held-out of {ho.size} (bin it with --heldout-fraction, e.g. 0.25)"
        )
    bw = float(ds.attrs.get("bin_width") or np.diff(ds["time"].values[:2])[0])
    return train, test, ho, bw


def _heldin_features(ds, x, obs, ho, bw, features, causal=False):
    """kernel sd (s) -> (trial, time, held-in) features of every trial's smoothed held-in
    counts (``pre_activity`` extends each trial's start). Causal: bins with no observed
    earlier bin in reach get smoothed counts 0 (a fit's masked history is 0 too)."""

    def feats(sd):
        s = _smoothed_heldin(ds, x, obs, ho, sd / bw, causal)
        return _features(np.nan_to_num(s, nan=0.0) if causal else s, features)

    return feats


def _smoothed_heldin(ds, x, obs, ho, sd_bins: float, causal: bool) -> np.ndarray:
    """(trial, time, held-in) counts per bin of every trial's held-in units smoothed by
    :func:`smooth_spikes` (kernel sd in bins; ``pre_activity`` extends each trial's start)."""
    pre, pre_obs = pre_context(ds, np.arange(ds.sizes["trial"]), np.flatnonzero(~ho))
    return smooth_spikes(x[..., ~ho], obs, sd_bins, pre, pre_obs, causal=causal)


def _heldout_rates(f, x, obs, ho, train, test, alpha, max_iter) -> np.ndarray:
    """(trial, time, held-out) rates of GLMs fitted on the training trials' observed bins,
    predicted on the observed bins of the train and test trials (NaN elsewhere); f:
    (trial, time, feature) features of every trial."""
    fit_bins, pred_bins = train[:, None] & obs, (train | test)[:, None] & obs
    rates = np.full((*x.shape[:2], int(ho.sum())), np.nan)
    rates[pred_bins] = fit_predict(f[fit_bins], x[fit_bins][:, ho], f[pred_bins], alpha, max_iter)
    return rates


def _heldout_scores(ds, x, rates, ok_te, ho, tri, te, labels, psth_sd, history):
    """co_bps, the held-out log-likelihood per bin and neuron and co_psth_r2 of ``rates``
    on the scored test bins ``ok_te`` (test trial, time)."""
    y = x[te][..., ho]
    null = null_rate(ds.isel(trial=tri), history)[ho]
    ll = mt.poisson_loglik(y, rates)[ok_te]
    psth = None
    if labels is not None:
        scored = np.isin(np.arange(ds.sizes["trial"]), te)
        psth = heldout_psth_r2(ds, scored, rates, ok_te, labels, psth_sd)
    return {
        "co_bps": mt.bits_per_spike(y, rates, null, ok_te[..., None]),
        "test_ll_heldout_per_bin_neuron": float(ll.mean()) if ll.size else None,
        "co_psth_r2": psth,
    }


def _test_da(ds, te, ho, values) -> xr.DataArray | None:
    """(trial, time, held-out unit) ``values`` of every trial -> a DataArray of the test
    trials ``te`` (coords of the held-out units ``ho``); None -> None."""
    if values is None:
        return None
    values = values[te]
    sub = ds.isel(trial=te, unit=np.flatnonzero(ho))
    return xr.DataArray(
        values,
        dims=("trial", "time", "unit"),
        coords={
            "trial": sub["trial"].values,
            "time": sub["time"].values,
            "unit": sub["unit"].values,
            "split": ("trial", np.asarray(sub["split"].values).astype(str)),
            "heldout": ("unit", np.ones(int(ho.sum()), bool)),
        },
    )


def write_reference(result, out_dir) -> Path:
    """Write a reference as an evaluation-style folder (atomically).

    ``metrics.json`` (NaN -> null) and, for smoothing, ``rates.nc`` (``predicted``,
    ``observed`` and, when computed, ``predicted_causal`` (trial, time, unit): test trials,
    held-out units), ``cv_scores.json`` and ``cv_scores_causal.json``;
    for PCA ``latents.nc`` (``latents`` (trial, time, latent) of every trial) and
    ``components.nc``. No ``connectivity.nc`` or ``rollout.nc``: a reference has neither.

    Returns:
        ``out_dir`` as a Path.
    """
    from disrnn._json import sanitize

    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        text = json.dumps(sanitize(result.metrics), indent=2, allow_nan=False) + "\n"
        with atomic_file(tmp / "metrics.json") as f:
            f.write_text(text)
        attrs = clean_attrs({"method": result.metrics["method"], "seed": result.metrics["seed"]})
        if isinstance(result, SmoothingResult):  # else a disrnn.evaluation.pca.PCAResult
            rates = {"predicted": result.rates, "observed": result.observed}
            if result.rates_causal is not None:
                rates["predicted_causal"] = result.rates_causal
            save_dataset(xr.Dataset(rates, attrs=attrs), tmp / "rates.nc")
            for name, cv in (("cv_scores", result.cv_scores), ("cv_scores_causal",
                             result.cv_scores_causal)):  # fmt: skip
                with atomic_file(tmp / f"{name}.json") as f:
                    f.write_text(json.dumps(cv, indent=2) + "\n")
        else:
            save_dataset(xr.Dataset({"latents": result.latents}, attrs=attrs), tmp / "latents.nc")
            comps = xr.Dataset({"components": result.components, "mean": ("unit", result.mean)})
            save_dataset(
                comps.assign_coords(unit=result.components["unit"].values), tmp / "components.nc"
            )
    return out_dir
