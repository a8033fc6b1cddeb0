"""Model selection: how many modules, and of what sizes, a dataset supports.

    from disrnn.selection import SelectConfig, select, read_selection
    select("dataset.nc", "results/s/selection", SelectConfig(ranks=(4, 6), seeds=2))
    decision, candidates = read_selection("results/s/selection")

File -> job:

    config.py   SelectConfig (validated; no torch, the workflow imports it) and
                integer_partitions, the partitions of a rank into groups
    rule.py     the decision rule, written once (decide, RULE); pandas only
    score.py    score_fit: a candidate's validation likelihood, co-bps and PC with the
                evaluation stage's code
    run.py      select(): the grid of lrRNN ranks and DisRNN partitions over seeds
    folder.py   the selection folder: write_selection, read_selection, selected_groups

Names are imported lazily: ``import disrnn.selection.config`` does not import torch.
"""

from __future__ import annotations

from disrnn._lazy import lazy_getattr

#: home module -> the names it exports here
_HOMES = {
    "disrnn.selection.config": ("SelectConfig", "integer_partitions"),
    "disrnn.selection.rule": ("RULE", "MODULES", "NO_EVIDENCE", "decide"),
    "disrnn.selection.score": ("score_fit",),
    "disrnn.selection.run": ("select",),
    "disrnn.selection.folder": ("read_selection", "selected_groups"),
}
_EXPORTS = {name: home for home, names in _HOMES.items() for name in names}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS)
