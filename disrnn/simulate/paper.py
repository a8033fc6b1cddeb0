"""The paper's generator: a low-rank RNN trained to produce the latents.

Given z-scored latents z_t (latent,) of consecutive bins, a decoder (A (unit, latent),
a (unit,)) and an encoder (B (latent, unit), b (latent,)) are trained together, as the
paper's published code does, so that each latent step is one step of a low-rank RNN:

    z_t ~ B (tanh(A z_{t-1} + a) + u_t) + b,    u_t ~ N(0, INPUT_SD^2 I), drawn anew each step,

by full-batch AdamW (lr ``LR``, weight decay ``WEIGHT_DECAY``, betas (0.9, 0.999),
eps 1e-8, PyTorch's update) on the mean squared error over the M pairs of consecutive
bins (K latents)

    loss = 1 / (M K) sum_t || B (tanh(A z_{t-1} + a) + u_t) + b - z_t ||^2,

from PyTorch's ``nn.Linear`` initialisation (every weight and bias of a layer with
``fan_in`` inputs ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))). The session's observations are
then x_t = A z_t + a + noise (continuous) or Poisson(softplus(A z_t + a)) (spikes)
(:func:`disrnn.simulate.generate.simulate`), so the data come from the low-rank RNN
x_t = A (B tanh(x_{t-1}) + b) + a with W = A B, each latent group g having its own
sub-connectivity W_g = A[:, g] B[g, :].

The gradients are written out (no autograd; :func:`mse_gradients`) and AdamW is a few
in-place ops on one flat parameter vector (:func:`adamw_step`), on one CPU thread:
10,000 steps on 2000 bins x 20 units take a few seconds. All randomness (initial
weights, inputs u_t) comes from one ``torch.Generator`` seeded from the caller's
``np.random.Generator``, so a seed gives the same network on every run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: AdamW learning rate, weight decay and input sd of the paper's generator
LR = 1e-3
WEIGHT_DECAY = 0.01
INPUT_SD = 0.005
BETAS = (0.9, 0.999)
EPS = 1e-8
#: full-batch optimiser steps of the paper's generator
TRAIN_STEPS = 10_000


@dataclass(frozen=True)
class TrainedNetwork:
    """The trained generator (float64 copies of the float32 weights).

    Attributes:
        A: (unit, latent) decoder; a: (unit,) its bias.
        B: (latent, unit) encoder; b: (latent,) its bias.
        r2: R^2 of z_t explained by B tanh(A z_{t-1} + a) + b over the training pairs
            (pooled over latents, no input): how closely the RNN reproduces the latents.
        loss: the last step's training loss (with its input u_t).
    """

    A: np.ndarray
    a: np.ndarray
    B: np.ndarray
    b: np.ndarray
    r2: float
    loss: float


def _shapes(n_units: int, n_latents: int) -> dict[str, tuple[int, ...]]:
    """The parameters in the order of the flat vector: A, a, B, b."""
    return {
        "A": (n_units, n_latents),
        "a": (n_units,),
        "B": (n_latents, n_units),
        "b": (n_latents,),
    }


def _views(flat, shapes: dict) -> dict:
    """Named views of the flat vector ``flat`` (a torch tensor) in the order of ``shapes``."""
    out, start = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        out[name] = flat[start : start + size].view(shape)
        start += size
    return out


def mse_gradients(p: dict, grad: dict, prev, nxt, u):
    """The loss of the module docstring and its gradients, written into ``grad``.

    Args:
        p: torch tensors A (unit, latent), a (unit,), B (latent, unit), b (latent,).
        grad: tensors of the same shapes, overwritten with d loss / d p.
        prev, nxt: (pair, latent) z_{t-1} and z_t; u: (pair, unit) inputs u_t.
    Returns:
        the loss, a 0-d tensor.

    With H = tanh(P A^T + a), S = H + U, R = S B^T + b - Z and G = 2 R / (M K):
    dB = G^T S, db = sum_t G, dA = ((G B) * (1 - H^2))^T P, da = sum_t (G B) * (1 - H^2).
    """
    import torch

    h = torch.addmm(p["a"], prev, p["A"].T).tanh_()  # (pair, unit)
    s = h + u
    r = torch.addmm(p["b"], s, p["B"].T).sub_(nxt)  # (pair, latent)
    loss = r.pow(2).mean()
    g = r.mul_(2.0 / r.numel())
    torch.mm(g.T, s, out=grad["B"])
    torch.sum(g, 0, out=grad["b"])
    d_pre = torch.mm(g, p["B"]).mul_(h.mul_(h).neg_().add_(1.0))  # (pair, unit)
    torch.mm(d_pre.T, prev, out=grad["A"])
    torch.sum(d_pre, 0, out=grad["a"])
    return loss


def adamw_step(flat, grad, m, v, step: int, lr: float = LR, weight_decay: float = WEIGHT_DECAY):
    """One AdamW update of ``flat`` in place, as ``torch.optim.AdamW`` computes it.

    p <- p (1 - lr wd); m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2;
    p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), t = ``step`` (from 1).
    """
    beta1, beta2 = BETAS
    flat.mul_(1.0 - lr * weight_decay)
    m.lerp_(grad, 1.0 - beta1)
    v.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
    denom = v.sqrt().div_(math.sqrt(1.0 - beta2**step)).add_(EPS)
    flat.addcdiv_(m, denom, value=-lr / (1.0 - beta1**step))


def init_flat(n_units: int, n_latents: int, generator):
    """(params,) float32 flat vector at ``nn.Linear``'s initialisation: A, a ~
    U(+-1/sqrt(latent)), B, b ~ U(+-1/sqrt(unit)), drawn from ``generator`` in that order."""
    import torch

    shapes = _shapes(n_units, n_latents)
    flat = torch.empty(sum(math.prod(s) for s in shapes.values()))
    fan_in = {"A": n_latents, "a": n_latents, "B": n_units, "b": n_units}
    for name, view in _views(flat, shapes).items():
        bound = 1.0 / math.sqrt(fan_in[name])
        view.uniform_(-bound, bound, generator=generator)
    return flat


def train_network(
    z: np.ndarray,
    pairs: np.ndarray,
    n_units: int,
    rng: np.random.Generator,
    steps: int = TRAIN_STEPS,
) -> TrainedNetwork:
    """Train the generator's network on the latents (the module docstring).

    Args:
        z: (bin, latent) float latents of the recorded bins in time order.
        pairs: (pair,) int indices i of the pairs (z[i], z[i + 1]) of consecutive bins.
        n_units: N, units of the network.
        rng: seeds the ``torch.Generator`` of the initial weights and the inputs u_t.
        steps: full-batch AdamW steps.

    Raises:
        ValueError: no pairs, or ``steps`` < 1.
    """
    import torch

    pairs = np.asarray(pairs, dtype=np.int64)
    if pairs.size == 0 or steps < 1:
        raise ValueError(
            f"the generator needs consecutive bins and steps >= 1, got {pairs.size} pairs "
            f"and steps={steps!r}"
        )
    generator = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
    zt = torch.as_tensor(z, dtype=torch.float32)
    prev, nxt = zt[pairs], zt[pairs + 1]
    shapes = _shapes(n_units, z.shape[1])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small dense ops: one thread beats two contending ones
    try:
        flat = init_flat(n_units, z.shape[1], generator)
        grad, m, v = torch.zeros_like(flat), torch.zeros_like(flat), torch.zeros_like(flat)
        p, g = _views(flat, shapes), _views(grad, shapes)
        for step in range(1, steps + 1):
            u = torch.randn(len(pairs), n_units, generator=generator).mul_(INPUT_SD)
            loss = mse_gradients(p, g, prev, nxt, u)
            adamw_step(flat, grad, m, v, step)
    finally:
        torch.set_num_threads(threads)
    net = {k: t.double().numpy().copy() for k, t in p.items()}
    z64 = np.asarray(z, dtype=float)
    pred = np.tanh(z64[pairs] @ net["A"].T + net["a"]) @ net["B"].T + net["b"]
    target = z64[pairs + 1]
    r2 = 1.0 - np.sum((target - pred) ** 2) / np.sum((target - target.mean(axis=0)) ** 2)
    return TrainedNetwork(**net, r2=float(r2), loss=float(loss))
