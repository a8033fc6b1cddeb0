"""The least-squares network of a simulated session: a random readout and the encoder
that is fitted to it (``PresetConfig.network="least-squares"``).

A_ij ~ N(0, gain^2 / K); the bias a solved for target rates (spikes) or drawn (continuous)
(:func:`random_readout`); after the observations, B and b are the affine least-squares
encoder from h_t = tanh(x_{t-1}) to z_t (:func:`true_encoder`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from disrnn.simulate.areas import modular_readout


def random_readout(cfg, z: np.ndarray, rng: np.random.Generator, latent_group: np.ndarray):
    """(A, a, unit_area) of a least-squares session, drawn from ``rng`` in that order.

    Args:
        cfg: the PresetConfig (``kind``, ``n_units``, ``readout_gain``, ``rate_range_hz``,
            ``bin_width``, ``bias_sd``, ``area_overlap``).
        z: (bin, latent) latents of the recorded bins; latent_group: (latent,) int.
    Returns:
        A: (unit, latent) with A_ij ~ N(0, gain^2 / K); a: (unit,), for spikes solved so
        that mean_t softplus(A z_t + a) is a target rate drawn log-uniformly from
        ``rate_range_hz`` (counts per bin), else ~ N(0, bias_sd^2); unit_area: (unit,)
        str with ``area_overlap`` (A restricted to each unit's area before a is solved,
        :func:`disrnn.simulate.areas.modular_readout`), else None.
    """
    n_latents = z.shape[1]
    A = rng.standard_normal((cfg.n_units, n_latents)) * cfg.readout_gain / np.sqrt(n_latents)
    unit_area = None
    if cfg.area_overlap is not None:
        A, unit_area = modular_readout(A, latent_group, cfg.area_overlap)
    if cfg.kind == "spike_counts":
        low, high = np.log(cfg.rate_range_hz)
        target_hz = np.exp(rng.uniform(low, high, cfg.n_units))
        return A, solve_bias(z @ A.T, target_hz * cfg.bin_width), unit_area
    return A, rng.normal(0.0, cfg.bias_sd, cfg.n_units), unit_area


def softplus(u: np.ndarray) -> np.ndarray:
    """log(1 + exp(u)), overflow-safe."""
    return np.maximum(u, 0.0) + np.log1p(np.exp(-np.abs(u)))


def solve_bias(drive: np.ndarray, target: np.ndarray, n_iter: int = 50) -> np.ndarray:
    """Per-unit a with mean_t softplus(drive[t, i] + a_i) = target_i, by Newton's method.

    drive: (bins, unit); target: (unit,) expected counts per bin, > 0.
    g(a) = mean_t softplus(drive + a) is increasing and convex, and by Jensen
    g(softplus^-1(target)) >= target, so Newton from there decreases monotonically
    onto the root.
    """
    a = np.log(np.expm1(target))  # softplus^-1(target)
    for _ in range(n_iter):
        u = drive + a
        excess = softplus(u).mean(axis=0) - target
        if np.all(np.abs(excess) <= 1e-12 * target):
            break
        slope = (0.5 * (1.0 + np.tanh(0.5 * u))).mean(axis=0)  # mean sigmoid(u)
        a = a - excess / slope
    return a


def true_encoder(activity: np.ndarray, latents: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Affine least-squares encoder from h_t = tanh(x_{t-1}) to z_t, within trials.

    Args:
        activity: (trial, time, unit) observations x.
        latents: (trial, time, latent) latents z.

    Returns:
        B: (latent, unit); b: (latent,); r2: 1 - SS_res / SS_tot pooled over latents,
        on the bins t >= 1 of every trial.
    """
    n_units, n_latents = activity.shape[-1], latents.shape[-1]
    h = np.tanh(activity[:, :-1, :].astype(float)).reshape(-1, n_units)  # (bins, unit)
    z = latents[:, 1:, :].reshape(-1, n_latents)  # (bins, latent)
    design = np.hstack([h, np.ones((h.shape[0], 1))])
    # complete orthogonal factorisation with column pivoting: several times faster than
    # the SVD of np.linalg.lstsq here, and still exact for rank-deficient designs
    coef, *_ = scipy.linalg.lstsq(design, z, lapack_driver="gelsy")  # (unit + 1, latent)
    resid = z - design @ coef
    r2 = 1.0 - np.sum(resid**2) / np.sum((z - z.mean(axis=0)) ** 2)
    return coef[:-1].T.copy(), coef[-1].copy(), float(r2)
