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
def _slots(groups: tuple[int, ...], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each group's latents sit when the groups are laid side by side, each padded
    to the widest: idx (group, widest) indexes the latents plus one zero column (index
    latent), pos (latent,) the flattened (group, widest) slot of each latent (cached)."""
    idx, pos, wide = [], [], max(groups)
    start = 0
    for g, k in enumerate(groups):
        idx.append(list(range(start, start + k)) + [sum(groups)] * (wide - k))
        pos += [g * wide + i for i in range(k)]
        start += k
    return (torch.tensor(idx, device=device), torch.tensor(pos, device=device))


def _by_group(x: torch.Tensor, groups: tuple[int, ...]) -> torch.Tensor:
    """(M, latent) -> (group, M, widest group): group g's columns, zero-padded."""
    idx, _ = _slots(groups, str(x.device))
    padded = torch.cat([x, x.new_zeros(x.shape[0], 1)], dim=1)
    return padded[:, idx].permute(1, 0, 2)


def _from_groups(y: torch.Tensor, groups: tuple[int, ...]) -> torch.Tensor:
    """(group, M, widest group) -> (M, latent): the inverse of :func:`_by_group`."""
    _, pos = _slots(groups, str(y.device))
    return y.permute(1, 0, 2).reshape(y.shape[1], -1)[:, pos]


def _table_times(s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """s @ x for tables s (..., i, j) and thin x (..., j, c), computed as (x^T s^T)^T with
    x's columns padded to a multiple of 4. The same sum; on the CPU's BLAS this order
    runs 2-5 x faster when c is a few columns (256-bin tables, c = 3-8)."""
    c = x.shape[-1]
    if c % 4:
        x = torch.cat([x, x.new_zeros(*x.shape[:-1], 4 - c % 4)], dim=-1)
    return (x.mT @ s.mT).mT[..., :c]


def _softmax_rows(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax over the last axis of y (..., j) and logsumexp_j y, with one exponential
    of the table: logsumexp_j y = max_j y - log max_j softmax(y) (the largest softmax
    entry is at least 1 / the number of j, so its log cannot underflow)."""
    s = torch.softmax(y, dim=-1)
    return s, y.amax(-1) - torch.log(s.amax(-1))


class _PartialCorrelation(torch.autograd.Function):
    """PC of :func:`partial_correlation` with a hand-written gradient.

    Autograd through the estimator keeps a dozen (group, M, M) temporaries and walks
    each of them back; here the forward makes two softmaxes over j (one per group, one
    of the whole latent) and the backward is four matrix products with them. With
    S_g, S the row softmaxes of l_ij,g + log w_ij and sum_g l_ij,g + log w_ij and
    D_g = S - S_g (rows of D_g sum to 0), sigma^2 = exp(2 log sigma):

        dPC/dz_i,g  = 1/(M sigma^2) sum_j D_ij,g mu_j,g
        dPC/dmu_j,g = 1/(M sigma^2) sum_i D_ij,g (z_i,g - mu_j,g)
        dPC/dlog sigma = 1/(M sigma^2) sum_gij D_ij,g |z_i,g - mu_j,g|^2

    Terms of l that depend on i alone (|z_i,g|^2 and the normalising constant) leave a
    softmax over j unchanged, so the (group, M, M) tensor holds z_i,g . mu_j,g / sigma^2
    - |mu_j,g|^2 / (2 sigma^2) + log w_ij only. Each group's table is one batched
    product of that group's own columns (padded to the widest group), with the column
    terms as one more column; each logsumexp comes from its softmax (no second
    exponential of the table). ``generate_vmap_rule``: the rotation search and the
    stacked seeds vmap it.

    First-order reverse mode only: the backward treats the softmaxes as constants, so a
    second derivative (``create_graph=True``) would be wrong, and forward mode (jvp) is
    not implemented; nothing in the package uses either. In float32 the value loses
    precision as sigma shrinks (the row terms, about |z|^2 / (2 sigma^2), cancel between
    log q(z_i) and the group terms): against float64, for latents of sd 3 and 256 bins,
    errors of 3e-6, 1e-5, 7e-5 and 2e-4 nats at log sigma = -1, -2, -3 and -4 (the
    autograd version: below 1e-6), far below the minibatch estimate's own noise; the
    gradients are as accurate as before.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(z, mu, log_sigma, ind, log_c, log_n, groups):
        # z, mu: (M, latent); ind: (latent, group) one-hot; log_c = log w_ij for i != j
        inv_s2 = torch.exp(-2 * log_sigma)
        col = ((mu**2) @ ind).T * (-0.5 * inv_s2)  # (group, j)
        row = ((z**2) @ ind).T * (-0.5 * inv_s2)  # (group, i)
        const = ind.sum(0) * (0.5 * _LOG_2PI + log_sigma)  # (group,)
        zs = z * inv_s2
        # each group's table from its own columns, the column terms as one more column
        # of the product (an added bias costs a pass over the table under vmap)
        ones = z.new_ones(z.shape[0], 1)
        left = torch.cat([_by_group(zs, groups), ones.expand(len(groups), -1, -1)], dim=-1)
        right = torch.cat([_by_group(mu, groups), (col + log_c)[:, :, None]], dim=-1)
        y = torch.bmm(left, right.mT)  # (group, i, j)
        y.diagonal(dim1=1, dim2=2).sub_(log_c)  # w_ii = 1
        s_g, lse_g = _softmax_rows(y)  # (group, i, j), (group, i)
        y_all = torch.cat([zs, ones], dim=1) @ torch.cat([mu, (col.sum(0) + log_c)[:, None]], 1).T
        y_all.diagonal().sub_(log_c)
        s_all, lse_all = _softmax_rows(y_all)  # (i, j), (i,)
        # log q(z_i) - sum_g log q(z_i,g): the row terms and log N_tot put back
        log_qz = lse_all + row.sum(0) - const.sum() - log_n
        log_qzg = lse_g + row - const[:, None] - log_n
        return (log_qz - log_qzg.sum(0)).mean(), s_g, s_all

    @staticmethod
    def setup_context(ctx, inputs, output):
        z, mu, log_sigma, ind, _, _, groups = inputs
        _, s_g, s_all = output
        ctx.groups = groups
        ctx.mark_non_differentiable(s_g, s_all)
        ctx.set_materialize_grads(False)  # no (group, M, M) zeros for the softmaxes' grads
        ctx.save_for_backward(z, mu, log_sigma, ind, s_g, s_all)

    @staticmethod
    def backward(ctx, grad, _grad_s_g, _grad_s_all):
        if grad is None:  # gradients not materialised: nothing flows into the value
            return (None,) * 7
        z, mu, log_sigma, ind, s_g, s_all = ctx.saved_tensors
        groups = ctx.groups
        # p_i = sum_j D_ij mu_j and r_j = sum_i D_ij z_i, each group's columns its own;
        # r's products carry a column of ones, whose row is sum_i D_ij
        p = _table_times(s_all, mu) - _from_groups(_table_times(s_g, _by_group(mu, groups)), groups)
        ones = z.new_ones(z.shape[0], 1)
        zr_all = torch.cat([z, ones], dim=1).T @ s_all  # (latent + 1, j)
        z_g = torch.cat([_by_group(z, groups), ones.expand(len(groups), -1, -1)], dim=-1)
        zr_g = torch.bmm(z_g.mT, s_g)  # (group, widest group + 1, j)
        r = zr_all[:-1].T - _from_groups(zr_g[:, :-1].mT, groups)
        colsum = (zr_all[-1][None, :] - zr_g[:, -1]).T @ ind.T  # (j, latent) sum_i D_ij
        scale = grad * torch.exp(-2 * log_sigma) / z.shape[0]
        grad_z = p * scale
        grad_mu = (r - mu * colsum) * scale
        # sum_ij D_ij |z_i - mu_j|^2 per group = sum_j colsum_j |mu_j|^2 - 2 sum_i z_i . p_i
        grad_log_sigma = scale * ((mu**2 * colsum).sum() - 2 * (z * p).sum())
        return grad_z, grad_mu, grad_log_sigma, None, None, None, None


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

    Zero for one group; the total correlation for K groups of one. Differentiable in
    z, mu and log_sigma (gradient: :class:`_PartialCorrelation`), also under vmap.

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
    log_sigma = torch.as_tensor(log_sigma, dtype=z.dtype, device=z.device)
    ind = group_indicator(groups, z.device, z.dtype)  # (latent, group)
    log_c = math.log((n_total - 1) / max(m - 1, 1))
    groups = tuple(int(g) for g in groups)
    return _PartialCorrelation.apply(z, mu, log_sigma, ind, log_c, math.log(n_total), groups)[0]


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
