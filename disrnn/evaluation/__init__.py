"""Evaluation of fitted models: metrics, latent alignment, connectivity, rollouts.

- :func:`evaluate` (``disrnn.evaluation.evaluate``) - one fit on one dataset's test split,
  written as an evaluation folder (metrics.json, latents.nc, connectivity.nc, rollout.nc);
  :func:`compute_evaluation` returns the same in memory
- ``alignment`` - affine maps and Hungarian matching of latent groups (numpy only)
- ``metrics`` - likelihoods, bits per spike, decoding, generation statistics; ``pc`` - PC/TC
  between latent groups of a fit's aggregated posterior
- ``connectivity`` - W, J, sub-connectivities, eigenvalues, agreement with the truth
- ``rollout`` - k-step-ahead and free-running generation from a fit
- ``references`` - the NLB smoothing baseline (``smoothing_reference``) and
  ``write_reference`` (an evaluation-style folder); ``pca`` - PCA latents as a reference
  for continuous sessions; ``decoding`` - condition decoding from any latents;
  :func:`run_reference` (``run_reference``) - the reference the dataset calls for
  (smoothing for spike counts, PCA otherwise), written as a folder
- ``unit_maps`` - which units form each latent group (units.nc, ``Fit.unit_groups``) and
  the agreement of the unit assignments across seeds

The package imports numpy, scipy and xarray only; torch is imported on first use (by
``load_fit`` and the rollouts).
"""

from __future__ import annotations

from disrnn.evaluation.evaluate import compute_evaluation, evaluate
from disrnn.evaluation.run_reference import run_reference

__all__ = ["compute_evaluation", "evaluate", "run_reference"]
