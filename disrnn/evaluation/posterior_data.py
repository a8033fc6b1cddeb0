"""What the smoothing posterior (:mod:`disrnn.evaluation.cosmoothing`) reads of a dataset:
the checks of a fit and dataset it can co-smooth, the tensors it trains on, and the
coordinated-dropout masks of a training step."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from disrnn.fit.folder import check_input
from disrnn.fit.tensors import dataset_kind

__all__ = ["HELDOUT_FIX", "check_posterior_data", "coordinated_dropout", "posterior_tensors"]

HELDOUT_FIX = "bin the session with held-out units, e.g. `disrnn bin --heldout-fraction 0.25`"


def coordinated_dropout(n_trial: int, heldin: torch.Tensor, p: float, generator=None):
    """Input scale and loss mask of one training step.

    Per trial, round(p * n_in) random held-in units are hidden from the input and added
    to the loss; held-out units are never input and always in the loss.

    Args:
        n_trial: trials in the batch; heldin: (unit,) bool; p: fraction in [0, 1);
        generator: torch.Generator.
    Returns:
        scale: (trial, unit) float32 input multiplier, 0 for every unit in the loss,
        n_in / (n_in - n_hidden) for the visible held-in units; loss: (trial, unit) bool.
        ``scale > 0`` and ``loss`` are never both true.
    """
    heldin = heldin.bool()
    n_in = int(heldin.sum())
    k = min(int(round(p * n_in)), n_in - 1) if n_in > 1 else 0
    hide = torch.zeros(n_trial, heldin.numel(), dtype=torch.bool)
    if k > 0:
        cols = torch.nonzero(heldin).flatten()
        order = torch.rand(n_trial, n_in, generator=generator).argsort(dim=1)[:, :k]
        hide[torch.arange(n_trial)[:, None], cols[order]] = True
    loss = hide | ~heldin[None, :]
    scale = (~loss).float() * (n_in / max(n_in - k, 1))
    return scale, loss


def check_posterior_data(fit, ds: xr.Dataset) -> np.ndarray:
    """(unit,) bool held-out units; ValueError for a non-Poisson fit or dataset."""
    if getattr(fit.config, "likelihood", None) != "poisson":
        raise ValueError(
            "co-smoothing scores spike counts with a Poisson likelihood; this fit's "
            f"likelihood is {fit.config.likelihood!r} (fit with --likelihood poisson)"
        )
    if dataset_kind(ds) != "spike_counts":
        raise ValueError("co-smoothing needs spike counts; this dataset's activity is continuous")
    if ds.sizes.get("unit") != fit.module.n_units:
        raise ValueError(
            f"the dataset has {ds.sizes.get('unit')} units; the fit has {fit.module.n_units}"
        )
    check_input(fit.uses_input, "input" in ds, f"the fit {fit.path}")
    if "heldout" not in ds.coords or not np.asarray(ds["heldout"].values, bool).any():
        raise ValueError(f"the dataset has no held-out units; {HELDOUT_FIX}")
    heldout = np.asarray(ds["heldout"].values, bool)
    if heldout.all():
        raise ValueError("every unit is held out; the encoder needs held-in units")
    seen = fit.module.input_mask.numpy().astype(bool)
    if (seen & heldout).any():
        raise ValueError(
            f"the fit's encoder saw {int((seen & heldout).sum())} of the dataset's held-out "
            "units; fit it on this dataset (its `heldout` coord hides them from the encoder)"
        )
    return heldout


def posterior_tensors(ds: xr.Dataset) -> dict:
    """x: (trial, pre + time, unit) float32 with pre_activity prepended; obs: same
    (trial, pre + time) float32 observed; n_pre; target_ok: (trial, time) bool; u or None."""
    act = ds["activity"].transpose("trial", "time", "unit").values.astype(np.float32)
    mask = np.ones(act.shape[:2], bool)
    if "mask" in ds:
        mask = ds["mask"].transpose("trial", "time").values.astype(bool)
    x, obs = act, mask
    n_pre = 0
    if "pre_activity" in ds:
        pre = ds["pre_activity"].transpose("trial", "pre_time", "unit").values.astype(np.float32)
        pm = np.ones(pre.shape[:2], bool)
        if "pre_mask" in ds:
            pm = ds["pre_mask"].transpose("trial", "pre_time").values.astype(bool)
        x, obs, n_pre = np.concatenate([pre, act], 1), np.concatenate([pm, mask], 1), pre.shape[1]
    x = np.where(obs[..., None], x, 0.0).astype(np.float32)
    u = None
    if "input" in ds:
        u = torch.from_numpy(ds["input"].transpose("trial", "time", "unit").values.astype("f4"))
    return {
        "x": torch.from_numpy(x),
        "obs": torch.from_numpy(obs.astype(np.float32)),
        "n_pre": n_pre,
        "target": torch.from_numpy(act),
        "target_ok": torch.from_numpy(mask),
        "u": u,
    }
