"""The evidence for modules beyond likelihood: are a candidate's groups independent,
and do different seeds find the same groups? (numpy; the evaluation's PC and alignment.)

Independence (:func:`independence_test`). The PC between groups of a finite set of
posterior means is not 0 for independent groups: the mixture of T bins is not the product
of its marginals, and that floor depends on the group sizes and the bandwidth (measured at
the fit's own sigma_q on rotation-limitcycle, K = 6: 0.04 nats for 5 + 1, 0.74 for 4 + 2,
1.06 for 3 + 3). Time series add a second floor: the bins of one trial follow one path
of each group, so a finite set of trials pairs the groups' paths. Both are measured by a
surrogate: the same latents with each group's trials shifted cyclically against the other
groups' (trial i of group 1 paired with trial i + r of group 0, time kept), which keeps
every group's own distribution and temporal structure and makes the groups independent.
On the true latents of the simulated sessions (the benchmark's validation trials,
every tenth from trial 1, seed 0) the observed PC sits within the surrogates
(lorenz-thomas 0.242 against 0.258 +- 0.032, rotation-limitcycle 0.115 against
0.131 +- 0.015; z -1.6 .. 1.0 over seeds 0-2), and the coupled control's lies far above
them (0.49 against 0.148 +- 0.036; z 9.4 .. 9.9). The statistic is
``z = (PC - mean(PC_surrogate)) / sd(PC_surrogate)`` (the rule's threshold on it is
:data:`disrnn.selection.rule.INDEPENDENCE_Z`).

The same surrogates measure a second, dynamical dependence: how much of a group's next
step the other groups' present state predicts. For each group g with latents z_g,
over the pairs of consecutive scored bins (t, t + 1) of a trial,

    SS_own   = residual sum of squares of z_g(t+1) ~ 1 + z_g(t) + z_g(t) (x) z_g(t)
    SS_other = the same with the other groups' z(t) added as regressors
    share_g  = 1 - SS_other / SS_own

(the own model is a second-order polynomial of the group's present state, so that a
nonlinear flow of its own is not read as coupling; least squares). The statistic is
``cross_share = max_g (share_g - mean over surrogates of share_g)``: the share of a
group's one-step residual that the others explain beyond the finite-sample floor
(the rule's limit is :data:`disrnn.selection.rule.CROSS_SHARE_MAX`). Independent
modules leave it near 0, coupled ones do not, also where their instantaneous PC is
within the surrogates: on the coupled control at rank 4 (simulation seeds 10-14) the
3 + 1 partitions that passed the PC test had cross shares 0.17-0.21, the true
partitions of lorenz-thomas and rotation-limitcycle 0.000-0.021 (their fitted latents,
each fit whose groups the other seed found again), and the true latents 0.20-0.31
against -0.007-0.018. PC is computed on the latents
standardised per dimension with the kernel-density rule-of-thumb bandwidth
``T^(-1/(K+4))`` (:func:`disrnn.fit.defaults.rule_of_thumb_log_sigma`), not with the
fit's own sigma_q, so every candidate is measured at one rule whatever its encoder's sd.

Agreement (:func:`group_agreement`). Latent groups are identified up to an invertible map
within each group; two seeds found the same modules when each one's groups predict the
other's through a block-diagonal affine map: the group latent R^2 of
:func:`disrnn.evaluation.alignment.align_groups` with one seed's latents as the target,
maps fitted on a random half of the bins and scored on the other, averaged both ways and
over pairs of seeds.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np

from disrnn.evaluation.alignment import align_groups
from disrnn.evaluation.pc import aggregated_posterior_pc
from disrnn.fit.defaults import rule_of_thumb_log_sigma

__all__ = ["independence_test", "group_agreement"]

#: the most surrogates per test: every distinct cyclic trial shift up to this many (19
#: with 20 validation trials; 8 random shifts underestimated the surrogates' sd by up to
#: 2.7 x on lorenz-thomas)
N_SURROGATES = 24


def independence_test(
    z: np.ndarray, ok: np.ndarray, groups, n_surrogates: int = N_SURROGATES,
    n_samples: int = 2000, seed: int = 0,
) -> dict:  # fmt: skip
    """PC between groups against trial-shifted surrogates (see the module docstring).

    Args:
        z: (trial, time, latent) latents (posterior means) of the scored trials.
        ok: (trial, time) bool, the bins scored (non-finite latents are dropped too).
        groups: (latent,) int group labels.
        n_surrogates: the most surrogates: min(n_surrogates, trials - 1), each with its
            own shift of group 1 (groups 2, 3, ... take the next shifts of one random
            order of 1 .. trials - 1, so the groups of one surrogate are shifted apart).
        n_samples, seed: Monte Carlo draws of each PC and the seed of all randomness.
    Returns:
        dict ``pc``, ``pc_null`` (surrogates' mean), ``pc_null_sd``, ``pc_z``; all NaN
        with one group, fewer than 3 trials or a zero surrogate sd; ``cross_share`` (the
        module docstring's statistic; NaN also where a group's regression has fewer
        consecutive bin pairs than twice its regressors).
    """
    z = np.asarray(z, dtype=float)
    groups = np.asarray(groups).reshape(-1)
    labels = np.unique(groups)
    nan = dict.fromkeys(("pc", "pc_null", "pc_null_sd", "pc_z", "cross_share"), float("nan"))
    n_trial = z.shape[0]
    if labels.size < 2 or n_trial < 3:
        return nan
    ok = np.asarray(ok, bool) & np.isfinite(z).all(-1)
    flat = z[ok]
    if flat.shape[0] < 2:
        return nan
    z = (z - flat.mean(0)) / np.where(flat.std(0) > 0, flat.std(0), 1.0)
    bw = math.exp(rule_of_thumb_log_sigma(flat.shape[0], flat.shape[1]))
    pc = aggregated_posterior_pc(z[ok], bw, groups, n_samples, seed)
    shares = _cross_shares(z, ok, groups, labels)
    order = np.random.default_rng(seed).permutation(np.arange(1, n_trial))
    nulls, null_shares = [], []
    for i in range(min(n_surrogates, n_trial - 1)):
        zs, oks = z.copy(), ok.copy()
        for j, lab in enumerate(labels[1:]):
            idx = np.roll(np.arange(n_trial), -int(order[(i + j) % order.size]))
            cols = np.flatnonzero(groups == lab)
            zs[:, :, cols] = z[idx][:, :, cols]
            oks &= ok[idx]
        if oks.sum() >= 2:
            nulls.append(aggregated_posterior_pc(zs[oks], bw, groups, n_samples, seed))
            null_shares.append(_cross_shares(zs, oks, groups, labels))
    cross = float("nan")
    if null_shares:
        cross = float(np.max(shares - np.mean(null_shares, axis=0)))  # NaN stays NaN
    if len(nulls) < 2 or np.std(nulls, ddof=1) == 0:
        return {**nan, "pc": pc, "cross_share": cross}
    mean, sd = float(np.mean(nulls)), float(np.std(nulls, ddof=1))
    return {"pc": pc, "pc_null": mean, "pc_null_sd": sd, "pc_z": (pc - mean) / sd,
            "cross_share": cross}  # fmt: skip


def _cross_shares(z: np.ndarray, ok: np.ndarray, groups, labels) -> np.ndarray:
    """(group,) share_g of the module docstring: 1 - SS_other / SS_own of z_g(t + 1)
    over the consecutive scored pairs of ``z`` (trial, time, latent); NaN for a group
    with fewer pairs than twice its regressors."""
    pair = ok[:, :-1] & ok[:, 1:]
    now, nxt = z[:, :-1][pair], z[:, 1:][pair]  # (pair, latent)
    out = np.full(len(labels), np.nan)
    for i, lab in enumerate(labels):
        own = groups == lab
        zg = now[:, own]
        rows, cols = np.triu_indices(zg.shape[1])
        x_own = np.column_stack([np.ones(len(zg)), zg, zg[:, rows] * zg[:, cols]])
        x_all = np.column_stack([x_own, now[:, ~own]])
        if len(zg) < 2 * x_all.shape[1]:
            continue
        y = nxt[:, own]
        ss_own, ss_all = (_rss(x, y) for x in (x_own, x_all))
        out[i] = 1.0 - ss_all / ss_own if ss_own > 0 else np.nan
    return out


def _rss(x: np.ndarray, y: np.ndarray) -> float:
    """Residual sum of squares of the least-squares fit of y (n, d) on x (n, p)."""
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return float(((y - x @ coef) ** 2).sum())


def group_agreement(latents: list[np.ndarray], groups, seed: int = 0) -> float:
    """Mean symmetric cross-seed group latent R^2 of one partition's fits.

    Args:
        latents: one (sample, latent) array per seed, the same bins in the same order.
        groups: (latent,) int group labels (the same partition for every seed).
        seed: seeds the random half of the bins the affine maps are fitted on.
    Returns:
        float in (-inf, 1]; NaN with fewer than two seeds.
    """
    if len(latents) < 2:
        return float("nan")
    ok = np.all([np.isfinite(a).all(1) for a in latents], axis=0)
    train = np.random.default_rng(seed).random(int(ok.sum())) < 0.5
    r2 = []
    for a, b in combinations([np.asarray(x, float)[ok] for x in latents], 2):
        r2.append(align_groups(a, groups, b, groups, train).group_r2)
        r2.append(align_groups(b, groups, a, groups, train).group_r2)
    return float(np.mean(r2))
