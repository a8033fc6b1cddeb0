"""One candidate's scores on the validation trials, with the evaluation stage's code.

The likelihood and co-bps are those of :func:`disrnn.evaluation.steps.one_step_metrics`
(the bins and null rates of an evaluation, on the ``val`` trials instead of ``test``);
PC is :func:`disrnn.evaluation.pc.aggregated_posterior_pc` between the candidate's
own groups (never a partition taken from the truth: the selection must not see it), and
the independence test of :mod:`disrnn.selection.evidence` compares it with surrogates.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from disrnn.evaluation.alignment import flatten_latents
from disrnn.evaluation.pc import aggregated_posterior_pc
from disrnn.evaluation.steps import EvalSplit, one_step_metrics
from disrnn.selection.evidence import independence_test

__all__ = ["SCORES", "score_fit", "val_latents"]

#: the columns :func:`score_fit` returns
SCORES = (
    "val_ll_per_bin", "val_ll_per_bin_neuron", "val_co_bps", "val_pc", "val_pc_z",
    "val_pc_null", "val_cross_share", "n_val_bins",
)  # fmt: skip


def val_latents(fit, ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(z (val trial, time, latent) posterior means, ok (val trial, time) scored bins)."""
    return _latents(fit, EvalSplit.of(fit, ds, scored="val"))


def _latents(fit, ev: EvalSplit) -> tuple[np.ndarray, np.ndarray]:
    return fit.latents(ev.dt).transpose("trial", "time", "latent").values, ev.ok


def score_fit(fit, ds: xr.Dataset, seed: int = 0, n_pc_samples: int = 2000) -> dict:
    """Scores of ``fit`` (a :class:`disrnn.fit.Fit`) on the ``val`` trials of ``ds``.

    Returns:
        dict: ``val_ll_per_bin`` log p(x | z = mu) per bin summed over units (nats, log x!
        included), ``val_ll_per_bin_neuron`` its mean over units, ``val_co_bps`` bits per
        spike of the held-out units (None without held-out units or for continuous data),
        ``val_pc`` PC between the fit's groups of the validation bins' aggregated posterior
        (0 for one group; Monte Carlo with ``n_pc_samples`` draws seeded by ``seed``),
        ``val_pc_z`` and ``val_pc_null`` the independence test's z and surrogate mean,
        ``val_cross_share`` its share of a group's next step the other groups predict
        (:func:`disrnn.selection.evidence.independence_test`; NaN for one group),
        ``n_val_bins``.
    Raises:
        ValueError: the dataset has no ``val`` trials.
    """
    ev = EvalSplit.of(fit, ds, scored="val")
    m: dict = {}
    one_step_metrics(fit, ev, m)
    z, ok = _latents(fit, ev)
    mu = flatten_latents(z, ok)  # (bin, latent)
    mu = mu[np.isfinite(mu).all(1)]
    pc = None
    if len(mu) >= 2:
        pc = aggregated_posterior_pc(mu, fit.posterior_scale, fit.latent_group, n_pc_samples, seed)
    test = independence_test(z, ok, fit.latent_group, n_samples=n_pc_samples, seed=seed)
    return {
        "val_ll_per_bin": m["test_ll_per_bin"],
        "val_ll_per_bin_neuron": m["test_ll_per_bin_neuron"],
        "val_co_bps": m["co_bps"],
        "val_pc": pc,
        "val_pc_z": test["pc_z"],
        "val_pc_null": test["pc_null"],
        "val_cross_share": test["cross_share"],
        "n_val_bins": int(ok.sum()),
    }
