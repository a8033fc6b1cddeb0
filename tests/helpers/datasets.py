"""The one toy-dataset builder of the tests (the dataset contract of docs/design.md)."""

from __future__ import annotations

import numpy as np
import xarray as xr


def _rotation(theta: float, axis: int) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def toy_dataset(
    n_trials=40, n_time=50, n_units=20, seed=0, kind="continuous", n_heldout=0, noise=0.1
) -> xr.Dataset:
    """Two independent 3-d noisy rotating latent groups read out by a random A.

    activity (trial, time, unit): continuous x = A z + noise, or Poisson counts with rate
    softplus(A z - 0.5). Splits cycle train/val/test/train.
    """
    rng = np.random.default_rng(seed)
    dyn = [
        0.97 * _rotation(0.3, 0) @ _rotation(0.2, 1),
        0.97 * _rotation(0.5, 2) @ _rotation(0.15, 0),
    ]
    z = np.zeros((n_trials, n_time, 6))
    for g, m in enumerate(dyn):
        s = rng.normal(size=(n_trials, 3))
        for t in range(n_time):
            s = s @ m.T + 0.3 * rng.normal(size=s.shape)
            z[:, t, 3 * g : 3 * g + 3] = s
    z /= z.reshape(-1, 6).std(0)
    A = rng.normal(size=(n_units, 6)) / np.sqrt(6)
    if kind == "continuous":
        x = (z @ A.T + noise * rng.normal(size=(n_trials, n_time, n_units))).astype(np.float32)
    else:
        x = rng.poisson(np.log1p(np.exp(z @ A.T - 0.5))).astype(np.int32)
    split = np.array(["train", "val", "test", "train"] * n_trials)[:n_trials]
    return xr.Dataset(
        {
            "activity": (("trial", "time", "unit"), x, {"kind": kind}),
            "true_latents": (("trial", "time", "latent"), z),
        },
        coords={
            "trial": np.arange(n_trials),
            "time": (np.arange(n_time) + 0.5) * 0.02,
            "unit": np.arange(n_units) + 100,
            "split": ("trial", split),
            "heldout": ("unit", np.arange(n_units) >= n_units - n_heldout),
            "latent_group": ("latent", np.repeat([0, 1], 3)),
        },
        attrs={"kind": kind},
    )
