"""The "How many modules?" section of a session report and the summary's selection
table, from a selection folder (``disrnn select``) only."""

from __future__ import annotations

import os

from disrnn import plotting
from disrnn.report.render import _fig, fmt
from disrnn.selection.rule import RANK_SHORTFALL

__all__ = ["NO_SELECTION", "selection_rows", "selection_section"]

#: what the section says when the session ran no selection
NO_SELECTION = (
    "No model selection was run for this session (select.enabled is false, or the report "
    "was rendered without a selection folder), so nothing here says how many modules the "
    "data support: the groups of every fit were set by hand."
)


def _pm(mean, sd, n) -> str:
    return f"{fmt(mean, 4)} ± {fmt(sd, 2)}" if n and n > 1 else fmt(mean, 4)


def selection_section(path: str | os.PathLike | None) -> dict:
    """What the section shows: {note} without a selection, else the verdict's sentence,
    the rule, figures and the per-rank and per-partition tables.

    Raises:
        FileNotFoundError: ``path`` is given but holds no selection.json.
    """
    if path is None:
        return {"note": NO_SELECTION}
    from disrnn.selection.folder import read_selection
    from disrnn.selection.rule import partition_label

    sel, cand = read_selection(path)
    chosen = partition_label(sel["partition"]) if sel.get("partition") else None
    tried = {r["rank"]: r for r in sel.get("ranks_with_partitions") or []}
    ranks = [
        {"cells": [r["rank"], _pm(r["ll_mean"], r["ll_sd"], r["n"]), fmt(r["ll_se"], 2), r["n"],
                   *_modules_cells(tried.get(r["rank"]))],
         "chosen": r["rank"] == sel["rank"]}
        for r in sel.get("ranks") or []
    ]  # fmt: skip
    parts = [
        {"cells": [r["partition"], _pm(r["ll_mean"], r["ll_sd"], r["n"]),
                   _pm(r.get("pc_mean"), r.get("pc_sd"), r["n"]), fmt(r.get("pc_z"), 2),
                   fmt(r.get("cross_share"), 3), fmt(r.get("agreement"), 3), _yes(r["keeps_likelihood"]), _yes(r.get("independent")),
                   r["n"]],
         "chosen": r["partition"] == chosen}
        for r in sel.get("partitions") or []
    ]  # fmt: skip
    k = sel["rank"]
    figs = [
        _fig("Held-out likelihood against K", plotting.plot_selection_ranks, cand, sel,
             caption="lrRNN's validation log-likelihood per bin (summed over units) at each "
             "rank: dots one seed each, squares mean ± sd over seeds; dashed: the best "
             "rank's mean minus the larger of its standard error and "
             f"{RANK_SHORTFALL:.0%} of the likelihood gained across the ranks (best minus "
             "worst); ringed: the selected K, the smallest rank above that line."),
        _fig(f"Independence and likelihood per partition at K = {k}",
             plotting.plot_selection_partitions, cand, sel,
             caption="Each DisRNN partition of the selected K: the independence z of its "
             "groups (their PC minus the mean PC of surrogates with the groups' trials "
             "shifted against each other, in surrogate sds) against its validation "
             "log-likelihood per bin (mean ± sd over seeds; dots: seeds). Solid: lrRNN at "
             "K; dashed: the line a partition must stay above, the lower of lrRNN at "
             "K − 1 (modules that cost less than a latent dimension) and lrRNN at K minus "
             "the rank step's tolerance (a loss the rank step ignores); dotted: the largest z that counts as independent; ringed: the chosen "
             "partition."),
    ]  # fmt: skip
    return {
        "note": None,
        "sentence": sel["sentence"],
        "verdict": sel["verdict"],
        "rule": sel["rule"],
        "rank": k,
        "groups": sel.get("fit_groups"),
        "figures": figs,
        "rank_columns": [
            "K",
            "lrRNN val LL per bin",
            "se",
            "seeds",
            "best admissible partition",
            "modules",
        ],
        "ranks": ranks,
        "partition_columns": [
            "partition",
            "DisRNN val LL per bin",
            "PC",
            "independence z",
            "cross share (next step)",
            "seed agreement (R²)",
            "keeps the likelihood (above the bar)",
            "independent",
            "seeds",
        ],
        "partitions": parts,
        "path": str(path),
    }


def _modules_cells(tried: dict | None) -> list[str]:
    """(best admissible partition, modules?) of one rank; dashes where none was tried."""
    if tried is None:
        return ["–", "–"]
    return [tried["partition"] or "none", _yes(tried["modules"])]


def _yes(flag) -> str:
    return "–" if flag is None else ("yes" if flag else "no")


def selection_rows(paths) -> dict[str, dict]:
    """Per session (selection.json ``session``): {K, partition, verdict, sentence} of
    every selection folder in ``paths``."""
    from disrnn.selection.folder import read_selection
    from disrnn.selection.rule import partition_label

    out = {}
    for p in paths or []:
        sel, _ = read_selection(p)
        part = sel.get("partition")
        out[str(sel.get("session"))] = {
            "K": sel["rank"],
            "partition": partition_label(part) if part else "–",
            "verdict": sel["verdict"],
            "sentence": sel["sentence"],
        }
    return out
