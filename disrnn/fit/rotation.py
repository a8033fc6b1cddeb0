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

import torch

from disrnn.fit.threads import threads_for
from disrnn.losses import partial_correlation

#: fits with at least this many epochs get the full rotation search of ``pc_rotation``
ROTATION_FULL_EPOCHS = 30

#: starts of the full search. Its 4 kept starts are the screen's lowest PCs on the score
#: bins (fresh bins and noise), not on the 256 bins the screen descended on: ranked on
#: its own bins, 64 starts put 8 of 120 paper-gaussian sessions (seeds 0-119) in a wrong
#: partition (32 starts: 5 of seeds 0-59), because a start that fits those bins' noise
#: scores low there; ranked on the score bins, 32 starts put none of the 120 in a wrong
#: one (16 starts: 4 of 60), in 0.8-0.96 x the time of 64 ranked the old way. Ranking on
#: 512 or 256 of the score bins put 2 of 60 in a wrong partition. (benchmarks/README.md,
#: "The rotation search ranks its starts on fresh bins".)
ROTATION_STARTS = 32


#: starts whose PCs are computed in one vmapped call. Each start's (group + 1, bin, bin)
#: tables are recomputed every step; 16 starts of 256 bins (12 MiB of tables) stay in
#: this CPU's 32 MiB L3 cache, all 64 do not: on one thread a 30-step screen of 64 starts
#: took 2.25 s in chunks of 16 against 2.63-2.72 s in one call (4 starts: 2.9-3.0 s, 1:
#: 5.6-6.2 s, per-call overhead); a 10-seed search on two threads took 20.5 s either way.
#: The same rotations, bit for bit.
START_CHUNK = 16


def search_size(epochs: int) -> dict[str, int]:
    """Keyword arguments of :func:`pc_rotation` for a fit of ``epochs`` epochs: the full
    search from ``ROTATION_FULL_EPOCHS`` on, a proportionally short one below (tests,
    smoke runs)."""
    b = min(1.0, epochs / ROTATION_FULL_EPOCHS)
    return {
        "starts": max(2, round(ROTATION_STARTS * b)),
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
    **search,
) -> tuple[torch.Tensor, float]:
    """The rotation R (latent, latent) of one fit's latents with the lowest exact PC:
    :func:`pc_rotations` of one fit. Returns (R, pc)."""
    return pc_rotations([mu], [log_sigma], groups, [generator], **search)[0]


def pc_rotations(
    mus: list[torch.Tensor],
    log_sigmas: list[float],
    groups: tuple[int, ...],
    generators: list[torch.Generator],
    starts: int = ROTATION_STARTS,
    steps: int = 30,
    keep: int = 4,
    refine_steps: int = 120,
    bins: int = 256,
    score_bins: int = 1024,
    lr: float = 0.05,
    screen_bins: int | None = None,
    rank_on: str = "score",
    rank_bins: int | None = None,
) -> list[tuple[torch.Tensor, float]]:
    """For each of F fits, the rotation R (latent, latent) of its latents with the
    lowest exact PC, all searched together.

    Per fit: ``starts`` starts (the identity, then Haar-random rotations) each run
    ``steps`` Adam steps on R = R_0 expm(X - X^T) with the PC of the first
    ``screen_bins`` (default: all; 128 of 256 put paper-gaussian sessions in wrong
    partitions, benchmarks/README.md) of ``bins`` random bins; the ``keep`` with the lowest
    PC on the score bins (``rank_on="score"``: up to ``score_bins`` bins with fresh
    noise, the first ``rank_bins`` of them if given; ``"fit"``: the screen's own bins)
    run ``refine_steps`` more on all ``bins`` and are compared by the PC of the score
    bins. Ranking on the screen's own bins favours the starts that fit those 256 bins'
    noise: on paper-gaussian seed 44 a wrong partition's PC there fell to 0.045 after 150
    steps while on the score bins it stayed at 0.230, level with the true partition's
    0.233. The F x starts descents are one
    batch of (fit, start, latent, latent) parameters: Adam is elementwise and each PC
    depends on its own rotation only, so every descent is the one it would be alone
    (to float rounding of the batched matrix products).

    Args:
        mus: F (bin, latent) float32 posterior means of the training bins (bins may
            differ between fits); log_sigmas: F log sigma_q.
        groups: group sizes (sum = latent).
        generators: F torch.Generators: fit f's bins, noise and starts are drawn from
            its own, in the same order as a search of that fit alone.
    Returns:
        F (R, pc): the rotation, (latent, latent) float32 with z' = R z, and its PC (nats).
    """
    if rank_on not in ("score", "fit"):
        raise ValueError(f"rank_on must be 'score' or 'fit', got {rank_on!r}")
    with threads_for(len(mus)):  # one thread per fit, up to torch's (disrnn.fit.threads)
        return _pc_rotations(
            mus, log_sigmas, groups, generators, starts, steps, keep, refine_steps, bins,
            score_bins, lr, screen_bins or bins, rank_on, rank_bins,
        )  # fmt: skip


def _draws(mu, k, generator, starts, bins, score_bins):
    """One fit's random draws, in a lone search's order: fit bins and noise, score
    bins and noise, then the starts (identity first)."""
    n = mu.shape[0]
    idx = torch.randperm(n, generator=generator)[:bins]
    fit = (mu[idx], torch.randn(len(idx), k, generator=generator))
    idx = torch.randperm(n, generator=generator)[:score_bins]
    score = (mu[idx], torch.randn(len(idx), k, generator=generator))
    firsts = [torch.eye(k)] + [_orthogonal(k, generator) for _ in range(starts - 1)]
    return fit, score, torch.stack(firsts)


def _pc_rotations(
    mus, log_sigmas, groups, generators, starts, steps, keep, refine_steps, bins, score_bins, lr,
    screen_bins, rank_on, rank_bins,
):  # fmt: skip
    from torch.func import vmap

    k = mus[0].shape[1]
    mus = [m.detach().float().cpu() for m in mus]
    draws = [
        _draws(m, k, g, starts, bins, score_bins) for m, g in zip(mus, generators, strict=True)
    ]
    ls = torch.tensor([float(v) for v in log_sigmas])  # (fit,)
    # (fit, bin, latent) sets; a fit with fewer bins than asked has fewer rows, so
    # each fit's PC runs on its own tensors
    fit_sets = [d[0] for d in draws]
    score_sets = [d[1] for d in draws]

    def pc_one(rot, m, eps, log_sigma):
        mr = m @ rot.T
        sigma = torch.exp(log_sigma)
        return partial_correlation(mr + sigma * eps, mr, log_sigma, groups, mr.shape[0])

    pc_starts = vmap(pc_one, in_dims=(0, None, None, None))  # (start, k, k) -> (start,)

    def pcs(rots, sets):
        """(fit, start) PCs of (fit, start, k, k) rotations on each fit's own bins,
        ``START_CHUNK`` starts at a time."""
        return torch.stack([
            torch.cat([pc_starts(r, m, e, ls[f]) for r in rots[f].split(START_CHUNK)])
            for f, (m, e) in enumerate(sets)
        ])  # fmt: skip

    def descend(rot0, n_steps, sets):
        """(fit, start, k, k) -> the rotations after n_steps of descent on ``sets``."""
        x = torch.zeros(rot0.shape, requires_grad=True)
        opt = torch.optim.Adam([x], lr=lr)
        for _ in range(n_steps):
            pc = pcs(rot0 @ torch.linalg.matrix_exp(x - x.mT), sets)
            opt.zero_grad()
            pc.sum().backward()
            opt.step()
        with torch.no_grad():
            return rot0 @ torch.linalg.matrix_exp(x - x.mT)

    screen_sets = [(m[:screen_bins], e[:screen_bins]) for m, e in fit_sets]
    firsts = torch.stack([d[2] for d in draws])  # (fit, start, k, k)
    rot1 = descend(firsts, steps, screen_sets)
    if rank_on == "score":
        rank_sets = [(m[:rank_bins], e[:rank_bins]) for m, e in score_sets]
    else:
        rank_sets = screen_sets
    with torch.no_grad():
        pc1 = pcs(rot1, rank_sets)  # (fit, start)
    # the keep lowest of each fit, in ascending order (a stable sort, as a lone search)
    order = torch.sort(pc1, dim=1, stable=True).indices[:, :keep]  # (fit, keep)
    kept = torch.stack([rot1[f, order[f]] for f in range(len(mus))])
    rot2 = descend(kept, refine_steps, fit_sets)
    with torch.no_grad():
        scores = pcs(rot2, score_sets)  # (fit, keep)
    out = []
    for f in range(len(mus)):
        j = int(torch.argmin(scores[f]))  # the first of equal scores, as a lone search
        out.append((rot2[f, j].clone(), float(scores[f, j])))
    return out


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
