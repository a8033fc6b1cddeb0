"""The decision rule of a model selection, written once (pandas and numpy only).

Every candidate is scored on the validation trials by its log-likelihood per bin
(summed over units, nats), and DisRNN candidates also by the partial correlation (PC)
between their groups. With mean m and standard error se = sd / sqrt(n) over the n
seeds of each candidate:

1. rank: K = the smallest rank whose lrRNN mean is within one standard error of the
   best rank's, m(K) >= m(K_best) - se(K_best) (the one-standard-error rule);
2. partition: at that K, among the DisRNN partitions whose mean is within one standard
   error of lrRNN's at K, m(p) >= m_lrRNN(K) - se_lrRNN(K), the one with the lowest
   mean PC;
3. verdict: ``modules`` when such a partition exists, ``no evidence for modules`` when
   every partition tried costs more likelihood than that (or none was tried).

A low PC alone is no evidence that the groups exist (a non-factorising system reaches
it too, at a likelihood cost); so only partitions that keep lrRNN's likelihood compete
on PC.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["MODULES", "NO_EVIDENCE", "RULE", "decide", "partition_label", "summarise"]

MODULES = "modules"
NO_EVIDENCE = "no evidence for modules"

#: the rule in one paragraph, as selection.json and the report state it
RULE = (
    "K is the smallest rank whose lrRNN validation log-likelihood per bin is within one "
    "standard error (over seeds) of the best rank's; at that K the partition is the "
    "DisRNN partition with the lowest PC between its groups among those whose validation "
    "log-likelihood is within one standard error of lrRNN's at K; when every partition "
    "costs more likelihood than that, the verdict is 'no evidence for modules'."
)

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
    return out


def choose_rank(df: pd.DataFrame) -> dict:
    """Step 1 on the lrRNN rows: {rank, best_rank, threshold, ranks (the summary rows)}.

    Raises:
        ValueError: no lrRNN row with a finite score.
    """
    ranks = summarise(df[df["method"] == "lrRNN"], ["rank"])
    if ranks.empty:
        raise ValueError("no lrRNN candidate has a finite validation log-likelihood")
    best = ranks.loc[ranks["ll_mean"].idxmax()]
    threshold = float(best["ll_mean"] - best["ll_se"])
    rank = int(ranks.loc[ranks["ll_mean"] >= threshold, "rank"].min())
    return {
        "rank": rank,
        "best_rank": int(best["rank"]),
        "rank_threshold": threshold,
        "ranks": ranks.to_dict("records"),
    }


def decide(df: pd.DataFrame) -> dict:
    """The rule of the module docstring on a table of candidates.

    Args:
        df: one row per fit: ``method`` (``lrRNN`` or ``DisRNN``), ``rank``,
            ``partition`` (``"3+3"``; an lrRNN's is its rank), ``seed``,
            ``val_ll_per_bin`` and ``val_pc``.
    Returns:
        dict: ``rank``, ``best_rank``, ``rank_threshold``, ``ranks`` (per rank: ll_mean,
        ll_sd, ll_se, n), ``partition`` (list of sizes, None without evidence),
        ``verdict``, ``partition_threshold``, ``partitions`` (per partition at the rank:
        ll_mean, ll_sd, ll_se, n, pc_mean, pc_sd, ``within``), ``fit_groups`` (what
        ``groups: auto`` fits: the partition; without evidence the partition that cost
        least likelihood, or one group of K when none was tried), ``sentence``.
    """
    out = choose_rank(df)
    k = out["rank"]
    lr = next(r for r in out["ranks"] if r["rank"] == k)
    threshold = float(lr["ll_mean"] - lr["ll_se"])
    parts = summarise(df[(df["method"] == "DisRNN") & (df["rank"] == k)], ["partition"])
    parts["within"] = parts["ll_mean"] >= threshold
    out.update(partition_threshold=threshold, partitions=parts.to_dict("records"))
    passing = parts[parts["within"]]
    if len(passing):
        best = passing.loc[passing["pc_mean"].idxmin()]
        out.update(verdict=MODULES, partition=_sizes(best["partition"]))
        out["fit_groups"] = out["partition"]
    else:
        out.update(verdict=NO_EVIDENCE, partition=None)
        least = parts.loc[parts["ll_mean"].idxmax(), "partition"] if len(parts) else str(k)
        out["fit_groups"] = _sizes(least)
    out["sentence"] = sentence(out, lr)
    return out


def _sizes(label: str) -> list[int]:
    return [int(v) for v in str(label).split("+")]


def sentence(d: dict, lr: dict) -> str:
    """The verdict in one sentence (what the report and selection.json say)."""
    k = d["rank"]
    head = f"K = {k}" + (
        f" (the best rank, K = {d['best_rank']}, is within one standard error)"
        if d["best_rank"] != k
        else " (the best rank)"
    )
    if d["verdict"] == MODULES:
        p = next(r for r in d["partitions"] if r["partition"] == partition_label(d["partition"]))
        return (
            f"{head}; {len(d['partition'])} modules of sizes {partition_label(d['partition'])}: "
            f"the lowest PC ({p['pc_mean']:.3g}) among the partitions within one standard "
            f"error of lrRNN's validation log-likelihood ({p['ll_mean']:.4g} vs "
            f"{lr['ll_mean']:.4g} nats per bin)."
        )
    if not d["partitions"]:
        return f"{head}; no evidence for modules: no partition of K = {k} was tried."
    least = max(d["partitions"], key=lambda r: r["ll_mean"])
    return (
        f"{head}; no evidence for modules: every partition costs more validation "
        f"log-likelihood than one standard error of lrRNN's ({least['partition']}, the "
        f"cheapest, {lr['ll_mean'] - least['ll_mean']:.3g} nats per bin below lrRNN's "
        f"{lr['ll_mean']:.4g} +- {lr['ll_se']:.2g})."
    )
