"""Figures of a model selection folder (``candidates.csv`` and ``selection.json``)."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from disrnn.plotting._base import _COLORS, _empty, _figure
from disrnn.selection.rule import INDEPENDENCE_Z, RANK_SHORTFALL

__all__ = ["plot_selection_partitions", "plot_selection_ranks"]


def plot_selection_ranks(candidates: pd.DataFrame, selection: dict) -> Figure:
    """lrRNN validation log-likelihood per bin against the rank K: one dot per seed, mean
    +- sd over seeds, the rule's rank threshold (dashed: the best rank's mean minus the
    larger of its standard error and ``RANK_SHORTFALL`` of the gain across the ranks)
    and the selected K (ringed).

    Args:
        candidates: candidates.csv (columns method, rank, seed, val_ll_per_bin).
        selection: selection.json (``ranks``, ``rank``, ``rank_threshold``).
    """
    ranks = pd.DataFrame(selection.get("ranks") or [])
    if ranks.empty:
        return _empty("no lrRNN candidate was scored")
    fig = _figure(5.2, 3.4)
    ax = fig.add_subplot()
    lr = candidates[candidates["method"] == "lrRNN"]
    ax.plot(lr["rank"], lr["val_ll_per_bin"], "o", color=_COLORS[0], alpha=0.35, ms=4,
            label="one seed")  # fmt: skip
    ax.errorbar(ranks["rank"], ranks["ll_mean"], yerr=ranks["ll_sd"], color=_COLORS[0],
                marker="s", capsize=3, label="mean ± sd over seeds")  # fmt: skip
    ax.axhline(selection["rank_threshold"], color="#555", ls="--", lw=1,
               label=f"best − max(1 se, {RANK_SHORTFALL:.0%} of the gain)")  # fmt: skip
    chosen = ranks[ranks["rank"] == selection["rank"]]
    ax.plot(chosen["rank"], chosen["ll_mean"], "o", ms=14, mfc="none", mec=_COLORS[1],
            mew=2, label=f"selected K = {selection['rank']}")  # fmt: skip
    ax.set_xlabel("rank K (lrRNN)")
    ax.set_ylabel("validation log-likelihood\nper bin (nats)")
    ax.set_xticks(ranks["rank"].tolist())
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_selection_partitions(candidates: pd.DataFrame, selection: dict) -> Figure:
    """At the selected K: each DisRNN partition's independence z (x; its PC against
    trial-shifted surrogates) against its validation log-likelihood per bin (y), mean
    +- sd over seeds; lrRNN's mean at K (solid), the rule's bar (dashed: the lower of
    lrRNN's mean at K - 1 and at K minus the rank step's tolerance),
    the largest independent z (dotted); the chosen partition ringed.

    Args:
        candidates: candidates.csv; selection: selection.json (``partitions``, ``rank``,
            ``partition_threshold``, ``partition``, ``ranks``).
    """
    parts = pd.DataFrame(selection.get("partitions") or [])
    if parts.empty:
        return _empty(f"no DisRNN partition of K = {selection.get('rank')} was tried")
    fig = _figure(5.2, 3.4)
    ax = fig.add_subplot()
    k = selection["rank"]
    dis = candidates[(candidates["method"] == "DisRNN") & (candidates["rank"] == k)]
    for i, row in parts.reset_index(drop=True).iterrows():
        c = _COLORS[i % len(_COLORS)]
        seeds = dis[dis["partition"] == row["partition"]]
        seeds = seeds.assign(val_pc_z=seeds.get("val_pc_z", float("nan")))
        row = row.reindex(row.index.union(["pc_z"]))  # NaN in a folder from before the test
        ax.plot(seeds["val_pc_z"], seeds["val_ll_per_bin"], "o", color=c, alpha=0.35, ms=4)
        ax.errorbar(row["pc_z"], row["ll_mean"], xerr=seeds["val_pc_z"].std(), yerr=row["ll_sd"],
                    color=c, marker="s", capsize=3, label=row["partition"])  # fmt: skip
    lr = next(r for r in selection["ranks"] if r["rank"] == k)
    ax.axhline(lr["ll_mean"], color="#333", lw=1, label=f"lrRNN, K = {k}")
    ax.axhline(selection["partition_threshold"], color="#555", ls="--", lw=1,
               label="the bar (lrRNN at K − 1 or at K − tolerance)")  # fmt: skip
    ax.axvline(INDEPENDENCE_Z, color="#555", ls=":", lw=1, label="independent up to here")
    if selection.get("partition"):
        label = "+".join(str(g) for g in selection["partition"])
        row = parts[parts["partition"] == label].iloc[0]
        ax.plot(
            row.get("pc_z", float("nan")),
            row["ll_mean"],
            "o",
            ms=14,
            mfc="none",
            mec=_COLORS[1],
            mew=2,
        )
    ax.set_xlabel("independence z of the groups (surrogate sds, validation trials)")
    ax.set_ylabel("validation log-likelihood\nper bin (nats)")
    ax.legend(fontsize=8, loc="best")
    return fig
