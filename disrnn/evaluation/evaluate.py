"""``evaluate``: one fit on one dataset's test trials, written as an evaluation folder.

The evaluation folder (written atomically) holds:

- ``metrics.json``: the keys listed below (``null`` = not applicable);
- ``latents.nc``: ``latents`` (trial, time, latent) posterior means of *every* trial with
  coords ``latent_group`` (latent), ``split`` (trial) and ``condition`` (trial, if any)
  and, with a condition, ``condition_accuracy_by_time`` (time) (see ``condition_*`` keys);
  with the truth also ``true_latents`` (trial, time, true_latent) and ``aligned_latents``
  (trial, time, true_latent) = the matched groupwise affine map of the inferred latents
  (fitted on the test bins) applied to every trial, for plotting;
- ``connectivity.nc``: :func:`disrnn.evaluation.connectivity.connectivity_dataset` (an
  empty Dataset with attrs ``available = 0`` for MLP variants);
- ``rollout.nc``: test trials only: ``observed``, ``predicted`` (one step ahead),
  ``rollout_mean`` / ``rollout_sample`` (free-running from bin L, feeding back means /
  samples) and ``true_rates`` when known, all (trial, time, unit); per unit ``null_rate``,
  ``ll_per_unit``, ``recon_r2_per_unit``, ``bps_per_unit`` (unit); k-step curves
  ``kstep_r2`` / ``kstep_bps`` / ``kstep_n`` (horizon);
- ``units.nc`` (linear decoder only): the unit map of
  :func:`disrnn.evaluation.unit_maps.unit_groups`: per unit (NWB id, with the dataset's
  unit coords) and group ``share``, ``variance``, ``drive``, the ``assignment`` and
  ``dominant`` group; per area ``area_share``, ``area_units``, ``area_dominant``; with the
  truth ``true_share``, ``true_dominant``.

``metrics.json`` keys (all metrics on the test trials, valid bins = observed (``mask``)
and not among the first L history-only bins; ``null`` = not applicable):

- identity: ``method``, ``seed`` (the fit's seed), ``eval_seed``, ``fit_dir``,
  ``dataset`` (absolute paths), ``session`` (the ``session`` argument, else dataset
  attrs ``session``, else the file stem), ``groups`` ("3,3"), ``kind``,
  ``likelihood``, the dataset attrs ``source dandiset dandiset_version asset_path
  nwb_path sha256 bin_width alignment``, ``n_test_trials``, ``n_test_bins``, ``n_units``,
  ``n_heldout``, ``history``; from the fit folder ``beta``, ``alpha``, ``fit_seconds``,
  ``epochs`` (run), ``best_epoch``.
- likelihood: ``test_ll_per_bin_neuron`` mean log p(x | z = mu) per bin and unit (nats,
  log x! included); ``test_ll_per_bin`` the same summed over units; with held-out units
  also ``test_ll_heldin_per_bin_neuron`` / ``test_ll_heldout_per_bin_neuron``.
- spikes only: ``bps`` bits per spike of the one-step predicted rates over all units,
  Poisson, null = each unit's mean training count per bin; ``bps_heldin``; ``co_bps``
  the same over held-out units (NLB co-bps; null from the training trials): the causal
  one-step prediction, latents from the past only (the RNN that defines W);
  ``co_bps_null_shift`` what every co-bps on those bins loses with NLB's null (each
  held-out unit's mean over the test bins: :func:`~disrnn.evaluation.metrics.null_shift`).
  ``co_bps_smoothed`` the same for the fit's smoothing posterior (latents from the
  held-in units of the whole trial, the fit's decoder A, a, the held-out units' rows
  refitted with the encoder; NLB allows the whole trial), on the same bins; ``co_bps_smoothed_all_bins`` on every observed bin;
  ``test_ll_heldout_smoothed_per_bin_neuron``; ``smoothing_posterior_seconds`` (0 when
  shared); ``smoothing_posterior_key`` (a hash of the data, settings and seed it was
  trained with) or, when another evaluation's posterior was this fit's (the lrRNN of a
  post-hoc method: same W, A b + a), ``smoothing_posterior_from``, that folder.
  ``co_psth_r2`` NLB's PSTH R^2 of the held-out units' one-step rates (condition =
  the ``condition`` coord; :func:`~disrnn.evaluation.spike_smoothing.heldout_psth_r2`),
  ``co_psth_r2_smoothed`` of the smoothing posterior's.
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
  bins with covariance sigma_q^2 I, or for a post-hoc fit its lrRNN's carried along
  (``Fit.posterior_scale``; :func:`~disrnn.evaluation.pc.aggregated_posterior_pc`);
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
  "running_sum": R^2 from the latents summed over the trial's bins up to each bin,
  "g{label}": R^2 per latent group}}: 5-fold (over test trials) cross-validated ridge
  (:func:`~disrnn.evaluation.decoding.latent_behavior_r2`);
  ``behavior_r2_nlb`` {name: R^2}: NLB's velocity-decoding protocol, ridge from the
  one-step predicted rates of all units, fit on the train trials, scored on the test
  trials (:func:`~disrnn.evaluation.metrics.nlb_decoding_r2`); ``behavior_r2_nlb_smoothed``
  the same from the smoothing posterior's rates (null where it is not fitted).
- condition (a trial coord ``condition`` with >= 2 classes, e.g. ``disrnn bin
  --condition type``; else null): ``condition_accuracy`` fraction of test trials whose
  condition one logistic regression (fitted on the train + val trials) decodes from
  the latents of all scored bins; ``condition_accuracy_time_mean`` the mean over bins of
  one such classifier per bin; ``condition_chance`` the fraction of test trials in the
  most common condition (:func:`~disrnn.evaluation.decoding.condition_decoding`;
  the PCA reference reports the same keys). The per-bin accuracy is latents.nc's
  ``condition_accuracy_by_time`` (time).
- units (linear decoder, >= 2 groups; else null; :mod:`disrnn.evaluation.unit_maps`):
  ``unit_mixed_fraction`` (units whose largest group share is below 2/3),
  ``unit_dominant_share_mean`` (mean largest share), ``unit_group_counts`` {group or
  "mixed": units}, ``unit_area_ari`` (ARI of the unit assignment against the units'
  ``area``, when >= 2 named areas), ``unit_assignment_ari_true`` (against the true
  assignment from ``true_A`` and ``true_latents``, units the truth does not call mixed).
- generation: ``kstep_r2`` / ``kstep_bps`` {k: value} k-step-ahead quality (see
  :func:`~disrnn.evaluation.rollout.kstep_ahead`); free-running sampled rollouts vs the
  observed test trials: ``freerun_rate_pearson``, ``freerun_rate_rmse``,
  ``freerun_rate_rel_err``, ``freerun_psth_r2`` (condition-averaged), ``freerun_corr_pearson``,
  ``freerun_corr_rmse``; ``freerun_mean_psth_r2`` for the mean-feedback rollout; and the
  same statistics of the observed training trials vs the test trials as a reference
  ceiling: ``reference_rate_pearson``, ``reference_psth_r2``, ``reference_corr_pearson``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import xarray as xr

from disrnn._atomic import atomic_dir, atomic_file
from disrnn._json import sanitize
from disrnn._outputs import check_output
from disrnn.data.io import save_dataset
from disrnn.evaluation.inputs import (
    SESSION_ATTRS,
    abs_path,
    as_fit,
    check_data,
    dataset_identity,
    fit_summary,
    load_data,
    session_id,
)
from disrnn.evaluation.posterior_metrics import smoothing_posterior_metrics
from disrnn.evaluation.rollout import generation_metrics, rollout_dataset
from disrnn.evaluation.steps import (
    EvalSplit,
    behavior_metrics,
    condition_metrics,
    connectivity_metrics,
    latent_metrics,
    latents_dataset,
    one_step_metrics,
    truth_metrics,
)
from disrnn.evaluation.unit_maps import unit_metrics

__all__ = ["compute_evaluation", "evaluate"]


def evaluate(
    fit_dir,
    dataset,
    out_dir,
    seed: int = 0,
    n_pc_samples: int = 2000,
    session: str | None = None,
    smoothing_posterior: bool = True,
    allow_other_dataset: bool = False,
    force: bool = False,
    posterior_from=None,
) -> Path:
    """Evaluate a fit on the ``test`` trials of ``dataset``; write ``out_dir``.

    :func:`compute_evaluation` computes everything in memory (for notebooks and benchmark
    scripts); this function writes its result as the evaluation folder.

    Args:
        fit_dir: fit folder (``disrnn.fit.load_fit``) or an object with the Fit contract.
        dataset: the dataset the fit was trained on (path or ``xr.Dataset``).
        out_dir: evaluation folder (replaced atomically).
        seed: seed of the Monte Carlo PC/TC estimate and of the sampled rollout.
        n_pc_samples: Monte Carlo samples for PC and TC.
        session: the session id metrics.json records (the workflow gives its config's id).
        smoothing_posterior: also fit the smoothing posterior of the fit for co-smoothing
            (Poisson fits with held-out units; :mod:`disrnn.evaluation.cosmoothing`).
        allow_other_dataset: evaluate on activity other than the fit's (refused by
            default: the metrics would not be the fit's; then only a warning).
        force: replace ``out_dir`` even when it is not a previous evaluation folder
            (:func:`disrnn._outputs.check_output`; an input is never replaced).
        posterior_from: the evaluation folder of a fit with the same W and A b + a (a
            post-hoc method's lrRNN): its smoothing posterior's metrics are reused when
            they are this fit's (:mod:`disrnn.evaluation.posterior_metrics`).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        FileNotFoundError: no fit or dataset, a fit folder without fit_info.json (an
        unfinished fit); ValueError: no ``split`` coordinate or labels other than
        train/val/test, no test trials, activity the fit's likelihood does not allow, or
        a dataset that does not match the fit (another one, unless
        ``allow_other_dataset``). FileExistsError: ``out_dir`` exists and is not an
        evaluation folder.

    The keys of ``metrics.json`` are listed in the module docstring.
    """
    out_dir = check_output(out_dir, "evaluation", inputs=(fit_dir, dataset), force=force)
    args = (seed, n_pc_samples, session, smoothing_posterior, allow_other_dataset)
    m, files = compute_evaluation(fit_dir, dataset, *args, posterior_from)
    with atomic_dir(out_dir) as tmp:
        with atomic_file(tmp / "metrics.json") as f:
            f.write_text(json.dumps(sanitize(m), indent=2, allow_nan=False) + "\n")
        for name, nc in files.items():
            save_dataset(nc, tmp / name)
    return out_dir


def compute_evaluation(
    fit,
    dataset,
    seed: int = 0,
    n_pc_samples: int = 2000,
    session: str | None = None,
    smoothing_posterior: bool = True,
    allow_other_dataset: bool = False,
    posterior_from=None,
) -> tuple[dict, dict[str, xr.Dataset]]:
    """Everything :func:`evaluate` writes, in memory.

    Args:
        fit: a Fit, or a fit folder; dataset: path or ``xr.Dataset``; seed, n_pc_samples,
            session, smoothing_posterior, allow_other_dataset, posterior_from: as for
            :func:`evaluate`.

    Returns:
        (metrics, files): the ``metrics.json`` dict (NaN not yet replaced by None) and
        ``{"latents.nc": ..., "connectivity.nc": ..., "rollout.nc": ...}`` and
        ``"units.nc"`` for a fit with a linear decoder.

    Raises:
        as :func:`evaluate`.
    """
    fit_dir = fit
    fit = as_fit(fit)
    ds, ds_path = load_data(dataset)
    check_data(fit, ds, allow_other_dataset)
    ev = EvalSplit.of(fit, ds)
    config = getattr(fit, "config", None)
    m: dict = {
        "method": getattr(config, "method", None),
        "seed": getattr(fit, "seed", None),
        "eval_seed": int(seed),
        "fit_dir": abs_path(getattr(fit, "path", fit_dir)),
        **dataset_identity(ds, ds_path),
        "session": session_id(ds, ds_path, session),
        "groups": ",".join(str(g) for g in getattr(fit, "groups", ())),
        "kind": ev.kind,
        "likelihood": getattr(config, "likelihood", None),
        **{k: _jsonable(ds.attrs.get(k)) for k in SESSION_ATTRS},
        "n_test_trials": int(ev.test.sum()),
        "n_test_bins": int(ev.ok.sum()),
        "n_units": int(ds.sizes["unit"]),
        "n_heldout": int(ev.heldout.sum()),
        "history": ev.L,
        **fit_summary(fit),
    }
    pred, per_unit, true_rates = _step("one-step prediction", one_step_metrics, fit, ev, m)
    post = (fit, ds, seed, smoothing_posterior, posterior_from)
    m.update(_step("smoothing posterior", smoothing_posterior_metrics, *post))
    lat = _step("latents, PC and TC", latent_metrics, fit, ev, m, n_pc_samples, seed)
    matching = _step("ground truth", truth_metrics, ev, lat, m)
    conn = _step("connectivity", connectivity_metrics, fit, ev, lat, matching, m)
    units = _step("unit maps", unit_metrics, fit, ev, lat, m)
    _step("behavior decoding", behavior_metrics, fit, ev, lat, m, pred)
    _step("condition decoding", condition_metrics, ev, lat, m, seed)
    gm, ks, roll_mean, roll_sample = _step(
        "rollouts", generation_metrics, fit, ev.dt, ev.dtr, ev.null_rate, ev.kind, seed
    )
    m.update(gm)
    roll = rollout_dataset(
        ev.dt,
        {"observed": ev.x, "predicted": pred, "rollout_mean": roll_mean}
        | {"rollout_sample": roll_sample}
        | ({} if true_rates is None else {"true_rates": true_rates}),
        ev.ok,
        {"null_rate": ev.null_rate, **per_unit},
        ks,
        attrs={"kind": ev.kind, "history": ev.L, "eval_seed": int(seed)},
    )
    lat_ds = latents_dataset(ev, lat, m)
    files = {"latents.nc": lat_ds, "connectivity.nc": conn, "rollout.nc": roll}
    return m, files | ({} if units is None else {"units.nc": units})


# --------------------------------------------------------------------------- helpers
log = logging.getLogger(__name__)


def _step(name: str, fn, *args):
    """``fn(*args)``, its wall time logged (INFO): the evaluation of a large session runs
    for minutes, and its log shows which step it is in."""
    t0 = time.perf_counter()
    log.info("evaluation: %s ...", name)
    out = fn(*args)
    log.info("evaluation: %s done in %.1f s", name, time.perf_counter() - t0)
    return out


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v
