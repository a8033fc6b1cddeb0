"""The decision rule of a model selection, written once (pandas and numpy only).

Every candidate is scored on the validation trials by its log-likelihood per bin
(summed over units, nats); DisRNN candidates also by the independence test of their
groups (z of their PC against trial-shifted surrogates) and every partition by the
agreement of its seeds (their groups' cross-seed R^2), both from
:mod:`disrnn.selection.evidence`. With mean m and standard error se = sd / sqrt(n) over
the n seeds of each candidate:

1. rank: K = the smallest rank whose lrRNN mean reaches the best rank's up to its
   standard error or ``RANK_SHORTFALL`` of the likelihood gained across the grid,
   whichever is larger:
   m(K) >= m(K_best) - max(se(K_best), RANK_SHORTFALL * (m(K_best) - m(K_worst)))
   (the smallest rank that gains 95 % of what the grid's ranks gain at most);
2. admissible partitions at that K: those whose DisRNN costs less likelihood than one
   latent dimension or than the rank step's tolerance t = m(K_best) - threshold,
   m(p) >= min(m_lrRNN(K - 1), m_lrRNN(K) - t) (the lrRNN of rank K - 1 is fitted for
   this comparison when the grid lacks it), and whose groups are as independent as
   surrogates: mean PC z <= ``INDEPENDENCE_Z`` and mean cross share (the share of a
   group's next step that the other groups' present state predicts, beyond the
   surrogates) <= ``CROSS_SHARE_MAX`` (not applied where it could not be measured);
3. partition: among the admissible partitions, the one that different seeds
   reproduce best (highest agreement; with one seed, where agreement is not measured,
   the lowest z); K supports modules when that agreement is at least ``AGREEMENT_MIN``
   (or not measured);
4. verdict: ``modules`` when K supports modules, else ``no evidence for modules``.
   Partitions tried at other ranks (``partitions_at: all``) are scored the same way
   and reported per rank (``ranks_with_partitions``), not chosen.

Why the tolerance in step 2: a likelihood loss the rank step ignores between ranks
should not reject modules either. On lorenz-thomas the 6th latent adds only 0.13-0.42
nats per bin over rank 5, and the true 3 + 3 DisRNN (20 epochs from the rank-6 lrRNN)
stayed 0.01-0.05 below the rank-5 lrRNN on simulation seeds 6 and 8, where the rank
step's tolerance was about 0.3.

Why a share of the gain and not one standard error alone: an lrRNN's validation
likelihood keeps rising past the generator's dimension (it models the nonlinear flows
of the simulated systems better with more latents), by far more than its standard
error over seeds. On lorenz-thomas (true K = 6, seeds 0-4, 2 fit seeds) ranks 7 and 8
added at most 0.15 nats per bin over rank 6 (on the grid 2, 4, 6, 8: 0.2-1.6 % of the
gain above rank 2), while rank 6 added 21-34 % over rank 4; the one-standard-error
rule took K = 8, the top of that grid, on every seed, and at such a rank no partition
passes (``benchmarks/README.md``, "selection.py").
The 5 % is the convention of "95 % of the variance explained"; it was set after
looking at those seeds' curves, on which any share from 2 % to 20 % gives the same
ranks on lorenz-thomas and rotation-limitcycle (the coupled control's rank 4 falls
0-11 % short of its best), and checked on seeds 5-9 and 10-14.

Why not the rank whose modules predict best: choosing instead the supporting rank
with the best likelihood (with the one-standard-error rank rule) found 3 + 3 on 3 of
lorenz-thomas seeds 5-9 and 2 + 2 on 3 of rotation-limitcycle's, but said "modules" on
4 of 5 coupled controls, at ranks 2 and 4 below the likelihood rank: a model that leaves
likelihood unexplained can split what it keeps into independent parts. A wrong
"modules" misleads more than a missed one, so the verdict stays at the likelihood rank.

Why the cross share: PC compares the groups' joint distribution of single bins with
their product; coupled dynamics may leave it within the surrogates when the validation
set is small. The coupled control (two diffusively coupled Lorenz systems, 10
validation trials of 20 bins) selects rank 4, where 3 + 1 partitions had PC z -0.3 and
0.9 on simulation seeds 11 and 13 (and agreed across seeds at 0.99-1.00), so the PC
test alone said "modules". Their cross shares were 0.17-0.21; the true partitions of
lorenz-thomas and rotation-limitcycle (seeds 10-14, each fit whose groups the other
seed found again) stayed at 0.000-0.021. The 5 % limit is the rank step's convention
again, set after looking at those seeds and checked on seeds 15-19
(``benchmarks/README.md``, "selection.py").

A low PC alone is no evidence that the groups exist: a non-factorising system reaches
it too, at a likelihood cost, and the raw PC of a finite set of bins depends on the
group sizes (see :mod:`disrnn.selection.evidence`); hence the surrogate test, and the
requirement that the groups be found again from another seed. The likelihood bar is an
effect size, not a standard error: true modules cost a little likelihood too (on
lorenz-thomas, seeds 0-4, DisRNN 3 + 3 started from converged lrRNNs of rank 6 stayed
0.00 to 0.10 nats per bin, summed over 60 units, below lrRNN's mean minus one standard
error over 2 seeds, so that bar rejected the true partition on four of five seeds), and a
model with modules that beats the unconstrained model of one latent fewer is the
better description of the data at that size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "AGREEMENT_MIN", "CROSS_SHARE_MAX", "INDEPENDENCE_Z", "MODULES", "NO_EVIDENCE", "RANK_SHORTFALL", "RULE", "decide",
    "partition_label", "summarise",
]  # fmt: skip

MODULES = "modules"
NO_EVIDENCE = "no evidence for modules"

#: the most surrogate sds a partition's PC may lie above its surrogates' mean (one-sided,
#: about 2.5 %) for its groups to count as independent
INDEPENDENCE_Z = 2.0
#: the largest share of a group's one-step residual that the other groups' present
#: state may predict, beyond trial-shifted surrogates, for the groups to count as
#: independent (:func:`disrnn.selection.evidence.independence_test`'s ``cross_share``)
CROSS_SHARE_MAX = 0.05
#: the least cross-seed group R^2 of the chosen partition for the verdict "modules"
AGREEMENT_MIN = 0.9
#: the share of the likelihood gained across the rank grid (best rank's mean minus the
#: worst rank's) by which the selected rank may fall short of the best rank's mean
RANK_SHORTFALL = 0.05

#: the rule in one paragraph, as selection.json and the report state it
RULE = (
    "K is the smallest rank whose lrRNN validation log-likelihood per bin falls short of "
    f"the best rank's by at most one standard error (over seeds) or {RANK_SHORTFALL:.0%} "
    "of the likelihood gained across the ranks tried (best rank minus worst), whichever "
    "is larger. At K a DisRNN partition is admissible when its validation log-likelihood "
    "is above that of the lrRNN of rank K - 1 (modules cost less than a latent "
    "dimension) or falls short of lrRNN's at K by no more than the rank step's "
    "tolerance, and its groups are as independent as surrogates with the groups' trials "
    f"shifted against each other (PC at most {INDEPENDENCE_Z:g} surrogate sds above their "
    "mean, and the other groups' present state predicting at most "
    f"{CROSS_SHARE_MAX:.0%} of each group's next step beyond the surrogates). The "
    "partition is the admissible one whose groups different seeds reproduce "
    "best (cross-seed group R^2); the verdict is 'modules' when that agreement is at "
    f"least {AGREEMENT_MIN:g}, else (or when no partition is admissible) 'no evidence for "
    "modules'."
)

#: the ``role`` of an lrRNN fitted only as the likelihood bar of step 2 (rank K - 1
#: outside the grid); the rank step ignores it
REFERENCE = "reference"

#: the score the rule reads (validation log-likelihood per bin, nats)
SCORE = "val_ll_per_bin"


def partition_label(groups) -> str:
    """``(3, 3)`` -> ``"3+3"``."""
    return "+".join(str(int(g)) for g in groups)


def summarise(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean, sd, se and n over seeds of the score (and PC) of each ``by`` group; rows
    with a non-finite score (a diverged fit) are left out."""
    ok = df[np.isfinite(df[SCORE].astype(float))]
    g = ok.groupby(by, sort=True)
    out = g[SCORE].agg(ll_mean="mean", ll_sd="std", n="count").reset_index()
    out["ll_sd"] = out["ll_sd"].fillna(0.0)
    out["ll_se"] = out["ll_sd"] / np.sqrt(out["n"])
    if "val_pc" in ok:
        pc = g["val_pc"].agg(pc_mean="mean", pc_sd="std").reset_index()
        out = out.merge(pc, on=by)
        out["pc_sd"] = out["pc_sd"].fillna(0.0)
    for col, name in (
        ("val_pc_z", "pc_z"), ("val_cross_share", "cross_share"), ("agreement", "agreement"),
    ):  # fmt: skip
        if col in ok:
            out = out.merge(g[col].mean().rename(name).reset_index(), on=by)
    return out


def choose_rank(df: pd.DataFrame) -> dict:
    """Step 1 on the lrRNN rows: {rank, best_rank, rank_tolerance (max(se, share of the
    gain)), rank_threshold (the best rank's mean minus it), ranks (the summary rows)}.

    Raises:
        ValueError: no lrRNN row with a finite score.
    """
    grid = df["role"] != REFERENCE if "role" in df else True
    ranks = summarise(df[(df["method"] == "lrRNN") & grid], ["rank"])
    if ranks.empty:
        raise ValueError("no lrRNN candidate has a finite validation log-likelihood")
    best = ranks.loc[ranks["ll_mean"].idxmax()]
    gain = float(best["ll_mean"] - ranks["ll_mean"].min())
    tolerance = float(max(best["ll_se"], RANK_SHORTFALL * gain))
    threshold = float(best["ll_mean"]) - tolerance
    rank = int(ranks.loc[ranks["ll_mean"] >= threshold, "rank"].min())
    return {
        "rank": rank,
        "best_rank": int(best["rank"]),
        "rank_tolerance": tolerance,
        "rank_threshold": threshold,
        "ranks": ranks.to_dict("records"),
    }


def decide(df: pd.DataFrame) -> dict:
    """The rule of the module docstring on a table of candidates.

    Args:
        df: one row per fit: ``method`` (``lrRNN`` or ``DisRNN``), ``rank``,
            ``partition`` (``"3+3"``; an lrRNN's is its rank), ``seed``,
            ``val_ll_per_bin``, ``val_pc``, ``val_pc_z``, ``val_cross_share`` and
            ``agreement`` (the last three NaN where not measured, as when absent).
    Returns:
        dict: ``rank``, ``best_rank``, ``rank_tolerance``, ``rank_threshold``,
        ``ranks`` (per rank of the grid: ll_mean, ll_sd, ll_se, n), ``reference_rank``
        (K - 1) and
        ``reference_ll`` (its lrRNN's mean) and ``partition_threshold`` (the lower of
        that and lrRNN's mean at K minus the rank step's tolerance; NaN without an lrRNN
        of rank K - 1: then no partition is admissible), ``partition`` (list of sizes,
        None without evidence),
        ``candidate`` (the best admissible partition, also when its seeds disagree; None
        when none is admissible), ``verdict``, ``partitions``
        (per partition at the rank: ll_mean, ll_sd, ll_se, n, pc_mean, pc_sd, pc_z,
        cross_share, agreement, ``keeps_likelihood``, ``independent``, ``admissible``),
        ``fit_groups`` (what
        ``groups: auto`` fits: the candidate; with none the partition that cost least
        likelihood, or one group of K when none was tried), ``rank_at_top`` (K is the
        largest of two or more ranks tried: the sentence then says to widen the grid),
        ``sentence``.
    """
    out = choose_rank(df)
    dis = df[df["method"] == "DisRNN"]
    tol = out["rank_tolerance"]  # what the rank step treats as negligible
    tried = {int(k): _rank_partitions(df, int(k), tol) for k in sorted(set(dis["rank"]))}
    k = out["rank"]  # other ranks' partitions are reported, not chosen (module docstring)
    at = tried.get(k) or _rank_partitions(df, k, tol)
    out.update(
        rank=k,
        reference_rank=k - 1,
        reference_ll=at["reference_ll"],
        partition_threshold=at["threshold"],
        partitions=at["table"],
        candidate=at["candidate"],
        verdict=MODULES if at["agreed"] else NO_EVIDENCE,
        partition=at["candidate"] if at["agreed"] else None,
        fit_groups=at["fit_groups"],
        ranks_with_partitions=[
            {"rank": r, "partition": partition_label(t["candidate"]) if t["candidate"] else None,
             "ll_mean": t["ll_mean"], "modules": t["agreed"]}
            for r, t in tried.items()
        ],
    )  # fmt: skip
    lr = next(r for r in out["ranks"] if r["rank"] == k)
    out["sentence"] = sentence(out, lr)
    others = [r for r in out["ranks_with_partitions"] if r["modules"] and r["rank"] != k]
    if others:
        out["sentence"] += (
            " Partitions of other ranks pass the same tests: "
            + ", ".join(f"{r['partition']} at K = {r['rank']}" for r in others)
            + " (not chosen: the rule decides at K)."
        )
    grid = [r["rank"] for r in out["ranks"]]
    out["rank_at_top"] = len(grid) > 1 and k == max(grid)
    if out["rank_at_top"]:
        out["sentence"] += (
            f" K = {k} is the largest rank tried, so the likelihood may keep rising above "
            "it: add larger ranks to the config's select.ranks before reading K as the "
            "population's dimension."
        )
    return out


def _rank_partitions(df: pd.DataFrame, k: int, tol: float) -> dict:
    """Steps 2-3 at rank ``k``: {table (per partition), threshold (the lower of lrRNN's
    mean at k - 1 and lrRNN's mean at k minus ``tol``, the rank step's tolerance),
    candidate (sizes of the best admissible partition or None), agreed (its agreement
    passes), ll_mean (its mean), fit_groups}."""
    lr = summarise(df[(df["method"] == "lrRNN") & df["rank"].isin([k - 1, k])], ["rank"])
    lr = dict(zip(lr["rank"], lr["ll_mean"], strict=True))
    threshold = float("nan")
    if k - 1 in lr:
        threshold = float(min(lr[k - 1], lr.get(k, np.inf) - tol))
    parts = summarise(df[(df["method"] == "DisRNN") & (df["rank"] == k)], ["partition"])
    for col in ("pc_z", "cross_share", "agreement"):
        if col not in parts:
            parts[col] = np.nan
    parts["keeps_likelihood"] = parts["ll_mean"] >= threshold
    # a cross share that could not be measured (NaN) rejects nothing
    parts["independent"] = (parts["pc_z"] <= INDEPENDENCE_Z) & ~(
        parts["cross_share"] > CROSS_SHARE_MAX
    )
    parts["admissible"] = parts["keeps_likelihood"] & parts["independent"]
    out = {"table": parts.to_dict("records"), "threshold": threshold,
           "reference_ll": float(lr.get(k - 1, np.nan)), "candidate": None,
           "agreed": False, "ll_mean": float("nan")}  # fmt: skip
    passing = parts[parts["admissible"]]
    if len(passing):
        best = (
            passing.loc[passing["agreement"].idxmax()]
            if passing["agreement"].notna().any()
            else passing.loc[passing["pc_z"].idxmin()]
        )
        agreement = best["agreement"]
        out.update(candidate=_sizes(best["partition"]), ll_mean=float(best["ll_mean"]),
                   agreed=bool(not np.isfinite(agreement) or agreement >= AGREEMENT_MIN))  # fmt: skip
        out["fit_groups"] = out["candidate"]
    else:
        least = parts.loc[parts["ll_mean"].idxmax(), "partition"] if len(parts) else str(k)
        out["fit_groups"] = _sizes(least)
    return out


def _sizes(label: str) -> list[int]:
    return [int(v) for v in str(label).split("+")]


def _cross(p: dict) -> str:
    share = p.get("cross_share", np.nan)
    return "" if not np.isfinite(share) else f", cross share {share:.2f}"


def sentence(d: dict, lr: dict) -> str:
    """The verdict in one sentence (what the report and selection.json say)."""
    k = d["rank"]
    head = f"K = {k}" + (
        f" (the best rank, K = {d['best_rank']}, is better by less than one standard error "
        f"or {RANK_SHORTFALL:.0%} of the likelihood gained across the ranks)"
        if d["best_rank"] != k
        else " (the best rank)"
    )
    if not d["partitions"]:
        return f"{head}; no evidence for modules: no partition of K = {k} was tried."
    if d.get("candidate") is not None:
        label = partition_label(d["candidate"])
        p = next(r for r in d["partitions"] if r["partition"] == label)
        agree = (
            "agreement not measured with one seed"
            if not np.isfinite(p["agreement"])
            else f"cross-seed group R^2 {p['agreement']:.2f}"
        )
        evidence = (
            f"validation log-likelihood {p['ll_mean']:.4g} vs lrRNN's {lr['ll_mean']:.4g} "
            "nats per bin, "
            f"independence z = {p['pc_z']:.2g}{_cross(p)}, {agree}"
        )
        if d["verdict"] == MODULES:
            return f"{head}; {len(d['candidate'])} modules of sizes {label} ({evidence})."
        return (
            f"{head}; no evidence for modules: the best admissible partition, {label}, is "
            f"not reproduced across seeds ({evidence}; at least {AGREEMENT_MIN} needed)."
        )
    within = [r for r in d["partitions"] if r["keeps_likelihood"]]
    if within:
        z = min(r["pc_z"] for r in within)
        shares = [r.get("cross_share", np.nan) for r in within if r["pc_z"] <= INDEPENDENCE_Z]
        if shares:  # PC passed somewhere: the dynamics were dependent
            share = np.nanmin(shares)
            return (
                f"{head}; no evidence for modules: the partitions that keep lrRNN's "
                "validation log-likelihood have dependent groups (where their PC is within "
                f"the surrogates, the other groups predict {share:.0%} or more of a group's "
                f"next step, above {CROSS_SHARE_MAX:.0%})."
            )
        return (
            f"{head}; no evidence for modules: the partitions that keep lrRNN's validation "
            f"log-likelihood have dependent groups (lowest independence z = {z:.2g}, above "
            f"{INDEPENDENCE_Z})."
        )
    least = max(d["partitions"], key=lambda r: r["ll_mean"])
    bar = d["partition_threshold"]
    if not np.isfinite(bar):
        return (f"{head}; no evidence for modules: no lrRNN of rank {k - 1} to compare "
                "the partitions' likelihood with.")  # fmt: skip
    return (
        f"{head}; no evidence for modules: every partition costs more validation "
        f"log-likelihood than a latent dimension and the rank step's tolerance "
        f"({least['partition']}, the cheapest, {least['ll_mean']:.4g} nats per bin "
        f"against the bar {bar:.4g}; lrRNN at K = {k - 1} and K = {k}: "
        f"{d['reference_ll']:.4g} and {lr['ll_mean']:.4g})."
    )
