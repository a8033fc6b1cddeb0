"""Loss terms of the DisRNN objective, as pure functions of tensors.

Per mini-batch of M bins (assembled once, by ``disrnn.fit.objective``):

    loss = mean_i [ sum_n NLL(x_in | z_i) + KL(q(z_i | x_<i) || N(0, I)) ]
           + beta * PC + alpha * BD

All functions are differentiable and free of host synchronisation.
"""

from __future__ import annotations

import functools
import math

import torch
from torch.nn import functional as F

_LOG_2PI = math.log(2 * math.pi)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, log_s: torch.Tensor) -> torch.Tensor:
    """-log N(x; mean, s^2) elementwise = log s + 1/2 log 2 pi + (x - mean)^2 / (2 s^2).

    Args:
        x, mean: (..., unit) float activity and predicted mean.
        log_s: (unit,) log standard deviation per unit.
    Returns:
        (..., unit) negative log-likelihood in nats.
    """
    return log_s + 0.5 * _LOG_2PI + 0.5 * ((x - mean) * torch.exp(-log_s)) ** 2


def poisson_nll(
    x: torch.Tensor, eta: torch.Tensor, link: str = "softplus", constant: bool = True
) -> torch.Tensor:
    """-log Poisson(x; f(eta)) elementwise = f(eta) - x log f(eta) + log x!.

    Args:
        x: (..., unit) counts per bin (float or int).
        eta: (..., unit) pre-link; rate f(eta) in expected counts per bin.
        link: ``exp`` or ``softplus``.
        constant: include log x! (drop it in training, where it is a constant).
    Returns:
        (..., unit) negative log-likelihood in nats.
    """
    x = x.to(eta.dtype)
    if link == "exp":
        out = torch.exp(eta) - x * eta
    elif link == "softplus":
        rate = F.softplus(eta)
        # log softplus(eta) without underflow: ~eta for eta << 0
        log_rate = torch.where(eta < -15.0, eta, torch.log(rate.clamp_min(1e-30)))
        out = rate - x * log_rate
    else:
        raise ValueError(f"unknown link {link!r}; valid: 'softplus', 'exp'")
    if constant:
        out = out + torch.lgamma(x + 1.0)
    return out


def kl_standard_normal(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2 I) || N(0, I)) per bin = 1/2 sum_k (sigma^2 + mu_k^2 - 1 - 2 log sigma).

    Args:
        mu: (..., latent) posterior means.
        log_sigma: scalar or (..., latent) log sigma_q.
    Returns:
        (...,) KL in nats.
    """
    log_sigma = torch.as_tensor(log_sigma, dtype=mu.dtype).expand_as(mu)
    return 0.5 * (torch.exp(2 * log_sigma) + mu**2 - 1.0 - 2 * log_sigma).sum(-1)


@functools.lru_cache(maxsize=64)
def _indicator(groups: tuple[int, ...], device: str, dtype: torch.dtype) -> torch.Tensor:
    idx = torch.repeat_interleave(torch.arange(len(groups)), torch.tensor(groups))
    return F.one_hot(idx, len(groups)).to(device=device, dtype=dtype)


def group_indicator(groups: tuple[int, ...], device=None, dtype=torch.float32) -> torch.Tensor:
    """(latent, group) one-hot: entry [k, g] = 1 when latent k is in group g (cached)."""
    return _indicator(tuple(int(g) for g in groups), str(device or "cpu"), dtype)


@functools.lru_cache(maxsize=64)
def _log_weights(m: int, n_total: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    log_w = torch.full((m, m), math.log((n_total - 1) / max(m - 1, 1)), dtype=dtype)
    log_w.fill_diagonal_(0.0)
    return log_w.to(device)


def partial_correlation(
    z: torch.Tensor,
    mu: torch.Tensor,
    log_sigma: torch.Tensor | float,
    groups: tuple[int, ...],
    n_total: int,
) -> torch.Tensor:
    """Importance-weighted minibatch estimate of the partial correlation between groups.

    With l_ij,g = log N(z_i,g; mu_j,g, sigma^2 I), w_ii = 1, w_ij = (N_tot-1)/(M-1):

        log q(z_i)   = logsumexp_j (sum_g l_ij,g + log w_ij) - log N_tot
        log q(z_i,g) = logsumexp_j (l_ij,g + log w_ij) - log N_tot
        PC = mean_i [ log q(z_i) - sum_g log q(z_i,g) ]

    Zero for one group; the total correlation for K groups of one.

    Args:
        z: (batch, latent) samples z_i ~ q(. | x_i).
        mu: (batch, latent) posterior means.
        log_sigma: scalar log sigma_q (shared by all latents).
        groups: group sizes, sum = latent.
        n_total: N_tot, number of bins of the data set the batch is drawn from.
    Returns:
        scalar tensor, nats.
    """
    if len(groups) == 1:
        return z.new_zeros(())
    m = z.shape[0]
    log_sigma = torch.as_tensor(log_sigma, dtype=z.dtype)
    ind = group_indicator(groups, z.device, z.dtype)  # (latent, group)
    inv_s = torch.exp(-log_sigma)
    zs, ms = z * inv_s, mu * inv_s
    # squared distance per group: |z_ig|^2 + |mu_jg|^2 - 2 z_ig . mu_jg
    zmask = zs.T[None] * ind.T[:, :, None]  # (group, latent, i)
    cross = torch.matmul(zmask.transpose(1, 2), ms.T[None])  # (group, i, j)
    zz = ((zs**2) @ ind).T  # (group, i)
    mm = ((ms**2) @ ind).T  # (group, j)
    const = ind.sum(0) * (0.5 * _LOG_2PI + log_sigma)  # (group,)
    l_g = -0.5 * (zz[:, :, None] + mm[:, None, :] - 2 * cross) - const[:, None, None]
    log_w = _log_weights(m, n_total, str(z.device), z.dtype)
    log_n = math.log(n_total)
    log_qz = torch.logsumexp(l_g.sum(0) + log_w, dim=1) - log_n  # (i,)
    log_qzg = torch.logsumexp(l_g + log_w, dim=2) - log_n  # (group, i)
    return (log_qz - log_qzg.sum(0)).mean()


def offblock_penalty(J: torch.Tensor, groups: tuple[int, ...]) -> torch.Tensor:
    """BD = mean of J_kl^2 over the entries (k, l) outside the group blocks; 0 for one group.

    Args:
        J: (latent, latent) latent connectivity B A.
    """
    if len(groups) == 1:
        return J.new_zeros(())
    ind = group_indicator(groups, J.device, J.dtype)
    off = 1.0 - ind @ ind.T  # (latent, latent) 1 outside the blocks
    return (J**2 * off).sum() / off.sum()
