"""The rotation initialisation of a multi-group fit (independent subspace analysis by PC).

NLL and KL of the DisRNN objective do not change when the latents are rotated
(z' = R z, B' = R B, b' = R b, A' = A R^T, R orthogonal: sigma_q I and N(0, I) are
rotation invariant); only the partial-correlation term picks the grouping. So a fit
may start from the optimum of the beta = 0 objective (an lrRNN) rotated by

    R* = argmin_{R in SO(K)} PC({R mu_i + sigma eps_i}),

the PC of the exact aggregated posterior q(z) = 1/M sum_j N(z; R mu_j, sigma^2 I) of
M training bins: independent subspace analysis with the PC contrast.
"""

from __future__ import annotations

import math

import torch

from disrnn.losses import partial_correlation

#: fits with at least this many epochs get the full rotation search of ``pc_rotation``
ROTATION_FULL_EPOCHS = 30


def search_size(epochs: int) -> dict[str, int]:
    """Keyword arguments of :func:`pc_rotation` for a fit of ``epochs`` epochs: the full
    search from ``ROTATION_FULL_EPOCHS`` on, a proportionally short one below (tests,
    smoke runs)."""
    b = min(1.0, epochs / ROTATION_FULL_EPOCHS)
    return {
        "starts": max(2, round(32 * b)),
        "steps": max(5, round(30 * b)),
        "keep": max(1, round(4 * b)),
        "refine_steps": max(10, round(120 * b)),
    }


def _orthogonal(k: int, generator: torch.Generator) -> torch.Tensor:
    """(k, k) Haar-random orthogonal matrix with det +1."""
    q, r = torch.linalg.qr(torch.randn(k, k, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))[None]
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q.float()


def pc_rotation(
    mu: torch.Tensor,
    log_sigma: float,
    groups: tuple[int, ...],
    generator: torch.Generator,
    starts: int = 32,
    steps: int = 30,
    keep: int = 4,
    refine_steps: int = 120,
    bins: int = 256,
    score_bins: int = 1024,
    lr: float = 0.05,
) -> tuple[torch.Tensor, float]:
    """The rotation R (latent, latent) of the latents with the lowest exact PC.

    ``starts`` starts (the identity, then Haar-random rotations) each run ``steps`` Adam
    steps on R = R_0 expm(X - X^T) with the PC of ``bins`` random bins; the ``keep`` with
    the lowest PC run ``refine_steps`` more and are compared by the PC of up to
    ``score_bins`` bins with fresh noise.

    Args:
        mu: (bin, latent) float32 posterior means of the training bins.
        log_sigma: log sigma_q.
        groups: group sizes (sum = latent).
        generator: torch.Generator for the bins, noise and starts.
    Returns:
        (R, pc): the rotation, (latent, latent) float32 with z' = R z, and its PC (nats).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small dense ops: one thread beats two contending ones
    try:
        return _pc_rotation(
            mu, log_sigma, groups, generator, starts, steps, keep, refine_steps, bins,
            score_bins, lr,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)


def _pc_rotation(
    mu, log_sigma, groups, generator, starts, steps, keep, refine_steps, bins, score_bins, lr
):
    n, k = mu.shape
    mu = mu.detach().float().cpu()
    sigma = math.exp(float(log_sigma))
    idx = torch.randperm(n, generator=generator)[:bins]
    m_fit, eps_fit = mu[idx], torch.randn(len(idx), k, generator=generator)
    idx = torch.randperm(n, generator=generator)[:score_bins]
    m_score, eps_score = mu[idx], torch.randn(len(idx), k, generator=generator)

    def pc_of(rot, m, eps):
        mr = m @ rot.T
        return partial_correlation(mr + sigma * eps, mr, log_sigma, groups, len(mr))

    def descend(rot0, n_steps):
        x = torch.zeros(k, k, requires_grad=True)
        opt = torch.optim.Adam([x], lr=lr)
        for _ in range(n_steps):
            pc = pc_of(rot0 @ torch.linalg.matrix_exp(x - x.T), m_fit, eps_fit)
            opt.zero_grad()
            pc.backward()
            opt.step()
        with torch.no_grad():
            rot = rot0 @ torch.linalg.matrix_exp(x - x.T)
            return rot, float(pc_of(rot, m_fit, eps_fit))

    firsts = [torch.eye(k)] + [_orthogonal(k, generator) for _ in range(starts - 1)]
    stage1 = sorted((descend(r0, steps) for r0 in firsts), key=lambda t: t[1])[:keep]
    best_r, best_pc = torch.eye(k), math.inf
    for r0, _ in stage1:
        rot, _ = descend(r0, refine_steps)
        with torch.no_grad():
            pc = float(pc_of(rot, m_score, eps_score))
        if pc < best_pc:
            best_r, best_pc = rot.clone(), pc
    return best_r, best_pc


@torch.no_grad()
def rotate_latents(module, rot: torch.Tensor) -> None:
    """In place: z' = R z. Encoder output rows and b by R, decoder input columns by R^T.

    Keeps every one-step prediction and the NLL + KL of the objective unchanged.
    """
    rot = rot.to(dtype=module.b.dtype, device=module.b.device)
    if module.encoder_kind == "linear":
        module.B_raw.copy_(rot @ module.B_raw)
    else:
        module.enc_w2.copy_(rot @ module.enc_w2)
    module.b.copy_(rot @ module.b)
    if module.decoder_kind == "linear":
        module.A.copy_(module.A @ rot.T)
    else:
        module.dec_w1.copy_(module.dec_w1 @ rot.T)
