"""Evaluation of fitted models: metrics, latent alignment, connectivity, rollouts.

- :func:`evaluate` (``disrnn.evaluation.evaluate``) - one fit on one dataset's test split,
  written as an evaluation folder (metrics.json, latents.nc, connectivity.nc, rollout.nc)
- ``alignment`` - affine maps and Hungarian matching of latent groups (numpy only)
- ``metrics`` - likelihoods, bits per spike, PC/TC, decoding, generation statistics
- ``connectivity`` - W, J, sub-connectivities, eigenvalues, agreement with the truth
- ``rollout`` - k-step-ahead and free-running generation from a fit

``evaluate`` is imported lazily so that the numpy-only modules do not import torch.
"""

from __future__ import annotations

__all__ = ["evaluate"]


def __getattr__(name: str):
    if name == "evaluate":
        from disrnn.evaluation.evaluate import evaluate

        return evaluate
    raise AttributeError(f"module 'disrnn.evaluation' has no attribute {name!r}")
