"""The post-hoc methods (``lrRNN+ICA``, ``LINT``): an lrRNN, transformed without training.

:func:`posthoc_fit` takes the lrRNN (loaded from a fit folder, or trained now with the
same seed) and regroups its latents with :func:`ica_transform` or :func:`lint_transform`.
The transforms keep W = A B and every one-step prediction unchanged. Each maps the
lrRNN's latents z to z' = M z + c; fit_info.json keeps M (``latent_map``), so the
post-hoc fit's posterior is its lrRNN's carried along (:class:`disrnn.fit.folder.Fit`
``posterior_scale``), not a new isotropic one at the new latents' scale.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from disrnn.fit.config import FitConfig
from disrnn.fit.folder import build_module, check_input, load_fit, read_losses
from disrnn.fit.loop import train_loop
from disrnn.fit.tensors import FitData

__all__ = ["ica_transform", "lint_transform", "load_start", "posthoc_fit"]


def posthoc_fit(
    config: FitConfig,
    train: FitData,
    val: FitData | None,
    seed: int,
    init_from: str | Path | None,
    progress: bool,
) -> tuple[torch.nn.Module, list[dict], dict]:
    """Transform an lrRNN (loaded from ``init_from`` or trained now, seeded like
    ``fit(method="lrRNN", seed=seed)``) by ICA or LINT.

    Returns:
        (module on the cpu, the lrRNN's loss history, info).
    Raises:
        ValueError: ``init_from`` is not an lrRNN of rank ``config.rank`` or disagrees
        with the data on having a known input.
    """
    if init_from is not None:
        module, history, base_info = _load_base(config, train, init_from)
    else:
        base_cfg = dataclasses.replace(
            config, method="lrRNN", groups=(config.rank,), posthoc=None, beta=0.0, alpha=0.0
        )
        tmp_gen = torch.Generator().manual_seed(int(seed))
        module = build_module(base_cfg, train.n_units, train.n_bins, train.input_mask, tmp_gen)
        module = module.to(train.h.device)
        history, base_info = train_loop(
            module, train, val, base_cfg, tmp_gen, int(seed), None, {"posthoc": True}, progress
        )
    module = module.cpu()
    t0 = time.perf_counter()
    # regroup the latents: the transformed model has the posthoc config's groups
    gen0 = torch.Generator().manual_seed(0)
    new = build_module(config, train.n_units, train.n_bins, train.input_mask, gen0)
    state = {k: v for k, v in module.state_dict().items() if k != "latent_group"}
    new.load_state_dict(state, strict=False)
    if config.posthoc == "lint":
        M = lint_transform(new)
    else:
        with torch.no_grad():
            lat = new.encode(new.features(train.h.cpu())).numpy()
        M = ica_transform(new, lat, seed=int(seed))
    info = {
        "stop_reason": "posthoc",
        "latent_map": M.tolist(),
        "posthoc_seconds": time.perf_counter() - t0,
        "base_info": base_info,
        "epochs_run": base_info.get("epochs_run"),
        "best_epoch": base_info.get("best_epoch"),
    }
    return new, history, info


def _load_base(config: FitConfig, train: FitData, init_from) -> tuple:
    """(module, loss history, info) of the lrRNN fit ``init_from``, checked."""
    base = _checked_base(config, train, init_from)
    return base.module, read_losses(Path(init_from) / "losses.csv"), base.info


def _checked_base(config: FitConfig, train: FitData, init_from):
    """The lrRNN fit ``init_from`` (a Fit), checked: an lrRNN of ``config``'s rank that
    agrees with the data on having a known input."""
    base = load_fit(init_from)
    if base.config.method != "lrRNN":
        raise ValueError(
            f"{config.method} transforms an lrRNN fit; {init_from} is a {base.config.method} fit"
        )
    if base.A is None or base.A.shape[1] != config.rank:
        raise ValueError(
            f"{config.method} with groups {config.groups} needs an lrRNN of rank "
            f"{config.rank}; {init_from} has rank {base.module.rank}"
        )
    check_input(base.uses_input, train.u is not None, f"the lrRNN fit {init_from}")
    return base


def load_start(module, config: FitConfig, train: FitData, init_from) -> dict:
    """In place: ``module`` takes the weights of the lrRNN fit ``init_from`` (the beta = 0
    start of a rotation init); returns that fit's info.

    Raises:
        ValueError: ``init_from`` is not an lrRNN of rank ``config.rank`` with this
        config's history, kernel, likelihood, link, sigma_q and KL weight, or disagrees on
        a known input.
    """
    base = _checked_base(config, train, init_from)
    for key in ("history", "kernel", "likelihood", "link", "sigma_scale", "kl_weight"):
        mine, theirs = getattr(config, key), getattr(base.config, key)
        if mine != theirs:
            raise ValueError(
                f"{config.method} has {key}={mine!r} but its start {init_from} was fitted "
                f"with {key}={theirs!r}; fit the lrRNN with the same options"
            )
    state = {k: v for k, v in base.module.state_dict().items() if k != "latent_group"}
    module.load_state_dict(state, strict=False)
    return {**base.info, "init_from": str(init_from)}


# ------------------------------------------------------------------ the transforms
@torch.no_grad()
def _set_linear(module, A: np.ndarray, a: np.ndarray, B: np.ndarray, b: np.ndarray) -> None:
    dtype = module.A.dtype
    module.A.copy_(torch.as_tensor(A, dtype=dtype))
    module.a.copy_(torch.as_tensor(a, dtype=dtype))
    # B_raw is masked by input_mask; held-out columns of B are already zero
    module.B_raw.copy_(torch.as_tensor(B, dtype=dtype))
    module.b.copy_(torch.as_tensor(b, dtype=dtype))


def lint_transform(module) -> np.ndarray:
    """In place: A' = U_K S_K, B' = V_K^T, b' = 0, a' = a + A b, where W = A B = U S V^T.

    Keeps W and the one-step mean f(W h + A b + a) unchanged (exactly up to float error).
    Latents are ordered by singular value.

    Returns:
        (K, K) M with z' = M (z - b): A' z' = W h = A (z - b), and A' = U_K S_K has
        orthogonal columns, so M = S_K^-1 U_K^T A.
    Raises:
        ValueError: W has rank below K (a zero singular value: z' would not determine z).
    """
    A = module.A.detach().double().numpy()
    B = module.B.detach().double().numpy()
    a = module.a.detach().double().numpy()
    b = module.b.detach().double().numpy()
    K = A.shape[1]
    U, S, Vt = np.linalg.svd(A @ B)
    if not S[K - 1] > 1e-12 * S[0]:
        raise ValueError(
            f"LINT needs W = A B of rank {K}; its singular values are {np.round(S[:K], 6)}"
        )
    _set_linear(module, U[:, :K] * S[:K], a + A @ b, Vt[:K], np.zeros(K))
    return (U[:, :K].T @ A) / S[:K, None]


def ica_transform(module, latents: np.ndarray, seed: int = 0) -> np.ndarray:
    """In place: rotate the latents to FastICA's independent components.

    With the unmixing U (K, K) and mean m fitted on ``latents`` (bins, latent) (the
    lrRNN's training posterior means), z' = U (z - m): B' = U B, b' = U (b - m),
    A' = A U^-1 (the mixing), a' = a + A m. W and one-step means are unchanged.

    Returns:
        the unmixing U (K, K): z' = U (z - m).

    Raises:
        ValueError: fewer bins than latents.
    """
    from sklearn.decomposition import FastICA

    K = module.A.shape[1]
    if latents.shape[0] <= K:
        raise ValueError(f"ICA needs more bins than latents, got {latents.shape[0]} bins")
    ica = FastICA(
        n_components=K, whiten="unit-variance", random_state=seed, max_iter=2000, tol=1e-5
    )
    ica.fit(latents.astype(np.float64))
    U = ica.components_  # (K, K) unmixing
    m = ica.mean_
    A = module.A.detach().double().numpy()
    B = module.B.detach().double().numpy()
    a = module.a.detach().double().numpy()
    b = module.b.detach().double().numpy()
    _set_linear(module, A @ np.linalg.inv(U), a + A @ m, U @ B, U @ (b - m))
    return U
