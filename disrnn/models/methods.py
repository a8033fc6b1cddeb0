"""The methods registry (``METHODS``) and the post-hoc transforms of an lrRNN.

Every method is the same network and training loop with different settings:

    lrRNN        one group, beta = alpha = 0
    lrRNN+ICA    FastICA on an lrRNN's training latents: A' = A mixing, B' = unmixing B
    LINT         SVD of an lrRNN's W = U S V^T: A' = U_K S_K, B' = V_K^T, z = B' h
    bdRNN        G groups, alpha = 1 (off-block penalty on J = B A), beta = 0
    DisRNN-full  K groups of one latent (total correlation), beta
    DisRNN       G groups, beta (partial correlation)
    DisRNN-MLP   DisRNN with one-hidden-layer MLP encoder and decoder

The post-hoc transforms keep W = A B and every one-step prediction unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class MethodSpec:
    """A method: its defaults (overridable), fixed values (not) and whether it has one group."""

    description: str
    defaults: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    one_group: bool = False


_LR = {"beta": 0.0, "alpha": 0.0, "encoder": "linear", "decoder": "linear"}

METHODS: dict[str, MethodSpec] = {
    "lrRNN": MethodSpec(
        "low-rank RNN, one latent group, no disentangling penalty",
        defaults={"groups": (6,)},
        fixed={**_LR, "posthoc": None},
        one_group=True,
    ),
    "lrRNN+ICA": MethodSpec(
        "FastICA rotation of an lrRNN's latents (components grouped in ICA order)",
        defaults={"groups": (3, 3)},
        fixed={**_LR, "posthoc": "ica"},
    ),
    "LINT": MethodSpec(
        "SVD of an lrRNN's W (components grouped by singular value)",
        defaults={"groups": (3, 3)},
        fixed={**_LR, "posthoc": "lint"},
    ),
    "bdRNN": MethodSpec(
        "block-diagonal penalty alpha on the latent connectivity J = B A",
        defaults={"groups": (3, 3), "alpha": 1.0},
        fixed={"beta": 0.0, "posthoc": None, "encoder": "linear", "decoder": "linear"},
    ),
    "DisRNN-full": MethodSpec(
        "total-correlation penalty: every latent its own group",
        defaults={"groups": (6,), "beta": None},
        fixed={"alpha": 0.0, "posthoc": None, "encoder": "linear", "decoder": "linear"},
    ),
    "DisRNN": MethodSpec(
        "partial-correlation penalty beta between latent groups",
        defaults={"groups": (3, 3), "beta": None},
        fixed={"posthoc": None, "encoder": "linear", "decoder": "linear"},
    ),
    "DisRNN-MLP": MethodSpec(
        "DisRNN with one-hidden-layer MLP encoder and decoder",
        defaults={"groups": (3, 3), "beta": None},
        fixed={"posthoc": None, "encoder": "mlp", "decoder": "mlp"},
    ),
}

#: the methods that transform a fitted lrRNN instead of training
POSTHOC_METHODS = ("lrRNN+ICA", "LINT")


# ------------------------------------------------------------------ post-hoc transforms
@torch.no_grad()
def _set_linear(module, A: np.ndarray, a: np.ndarray, B: np.ndarray, b: np.ndarray) -> None:
    dtype = module.A.dtype
    module.A.copy_(torch.as_tensor(A, dtype=dtype))
    module.a.copy_(torch.as_tensor(a, dtype=dtype))
    # B_raw is masked by input_mask; held-out columns of B are already zero
    module.B_raw.copy_(torch.as_tensor(B, dtype=dtype))
    module.b.copy_(torch.as_tensor(b, dtype=dtype))


def lint_transform(module) -> None:
    """In place: A' = U_K S_K, B' = V_K^T, b' = 0, a' = a + A b, where W = A B = U S V^T.

    Keeps W and the one-step mean f(W h + A b + a) unchanged (exactly up to float error).
    Latents are ordered by singular value.
    """
    A = module.A.detach().double().numpy()
    B = module.B.detach().double().numpy()
    a = module.a.detach().double().numpy()
    b = module.b.detach().double().numpy()
    K = A.shape[1]
    U, S, Vt = np.linalg.svd(A @ B)
    _set_linear(module, U[:, :K] * S[:K], a + A @ b, Vt[:K], np.zeros(K))


def ica_transform(module, latents: np.ndarray, seed: int = 0) -> None:
    """In place: rotate the latents to FastICA's independent components.

    With the unmixing U (K, K) and mean m fitted on ``latents`` (bins, latent) (the
    lrRNN's training posterior means), z' = U (z - m): B' = U B, b' = U (b - m),
    A' = A U^-1 (the mixing), a' = a + A m. W and one-step means are unchanged.

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
