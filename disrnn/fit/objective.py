"""The objective of a fit, written once: training, validation and restart selection all
call :func:`loss_terms`.

    total = mean_i [sum_n NLL(x_in | z_i) + w_KL KL_i] + beta PC + alpha BD,
    z_i = mu_i + sigma_q eps_i

NLL is the observation model's negative log-likelihood (:func:`nll_terms`), KL that of
q(z_i | x_<i) from N(0, I), PC the partial correlation between the latent groups of the
aggregated posterior and BD the off-block-diagonal penalty on J = B A (linear encoder
and decoder only). w_KL is ``FitConfig.kl_weight`` (bin width / 20 ms for spike counts,
``disrnn.fit.defaults.default_kl_weight``). The pure loss functions are in ``disrnn.losses``.
"""

from __future__ import annotations

import torch

from disrnn.fit.tensors import FitData
from disrnn.losses import (
    gaussian_nll,
    kl_standard_normal,
    offblock_penalty,
    partial_correlation,
    poisson_nll,
)
from disrnn.models.modules import DisRNN

__all__ = ["TERMS", "loss_terms", "nll_terms", "selection_objective", "SELECTION_PC_BINS"]

#: the loss terms, the columns of losses.csv after epoch, split, lr, beta, alpha
TERMS = ("total", "nll", "kl", "pc", "bd")

#: most validation bins the selection objective's exact PC uses (memory ~ bins^2)
SELECTION_PC_BINS = 2048


def nll_terms(module: DisRNN, x: torch.Tensor, eta: torch.Tensor, constant: bool = True):
    """(..., unit) elementwise negative log-likelihood of the module's observation model."""
    if module.likelihood == "gaussian":
        return gaussian_nll(x, eta, module.log_s)
    return poisson_nll(x, eta, module.link, constant=constant)


def loss_terms(
    module: DisRNN,
    h: torch.Tensor,
    x: torch.Tensor,
    eps: torch.Tensor,
    n_total: int,
    beta: float,
    alpha: float,
    pc_h: torch.Tensor | None = None,
    pc_eps: torch.Tensor | None = None,
    u: torch.Tensor | None = None,
    pc_idx: torch.Tensor | None = None,
    kl_weight: float = 1.0,
) -> torch.Tensor:
    """Loss terms of one batch of bins, stacked as (total, nll, kl, pc, bd) (the formula
    of the module docstring).

    Args:
        h: (batch, unit) history features or (batch, L, unit) lagged tanh (learned
            kernel); x: (batch, unit) targets; eps: (batch, latent) standard normal noise;
        n_total: N_tot, the bins the PC estimator's aggregated posterior stands for;
        beta, alpha: weights of PC and BD (BD only for a linear encoder and decoder).
        pc_h, pc_eps: (pc_batch, unit) history features and (pc_batch, latent) noise of a
            separate batch to estimate PC on (default: the likelihood batch).
        u: (batch, unit) known input added to the decoder's pre-activation, or None.
        pc_idx: (bins,) index of the batch's bins PC is estimated on (default: all).
        kl_weight: w_KL (the ``kl`` term returned is unweighted).
    """
    mu = module.encode(module.features(h))
    log_sigma = module.log_sigma
    z = mu + torch.exp(log_sigma) * eps
    eta = module.decode(z, u)
    nll = nll_terms(module, x, eta, constant=False).sum(-1).mean()
    kl = kl_standard_normal(mu, log_sigma).mean()
    zero = nll.new_zeros(())
    pc = zero
    if beta > 0:
        if pc_h is not None:
            mu = module.encode(module.features(pc_h))
            z = mu + torch.exp(log_sigma) * pc_eps
        elif pc_idx is not None:
            mu, z = mu[pc_idx], z[pc_idx]
        pc = partial_correlation(z, mu, log_sigma, module.groups, n_total)
    linear = module.encoder_kind == "linear" and module.decoder_kind == "linear"
    bd = offblock_penalty(module.B @ module.A, module.groups) if alpha > 0 and linear else zero
    total = nll + kl_weight * kl + beta * pc + alpha * bd
    return torch.stack([total, nll, kl, pc, bd])


@torch.no_grad()
def selection_objective(
    module: DisRNN, data: FitData, beta: float, seed: int, kl_weight: float = 1.0
) -> dict:
    """The objective restarts are compared by, on ``data`` (the validation bins).

    objective = mean_i [sum_n NLL(x_in | z_i) + w_KL KL_i] + beta PC (:func:`loss_terms`
    without BD) with noise from ``seed``; PC is that of the exact aggregated posterior
    of (up to ``SELECTION_PC_BINS`` of) the bins, q(z) = 1/M sum_j q(z | x_j) (no
    importance weights).

    Returns:
        dict of floats: objective, nll, kl, pc.
    """
    gen = torch.Generator().manual_seed(int(seed) + 104729)
    n = data.n_bins
    eps = torch.randn(n, module.rank, generator=gen).to(data.h.device)
    idx = None
    if beta > 0 and n >= 2:
        idx = torch.randperm(n, generator=gen)[:SELECTION_PC_BINS].to(data.h.device)
    pc_beta = beta if idx is not None else 0.0
    n_pc = 0 if idx is None else len(idx)
    terms = loss_terms(
        module, data.h, data.x, eps, n_pc, pc_beta, 0.0, u=data.u, pc_idx=idx, kl_weight=kl_weight
    )
    _, nll, kl, pc, _ = (float(t) for t in terms)
    return {"objective": nll + kl_weight * kl + beta * pc, "nll": nll, "kl": kl, "pc": pc}
