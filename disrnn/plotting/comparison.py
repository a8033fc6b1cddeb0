"""Figures comparing methods across sessions and seeds from a long metrics table."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from disrnn.plotting._base import (
    _COLORS,
    _empty,
    _figure,
)


def plot_metric_comparison(
    table, metrics: list[tuple[str, str]], reference: str = "DisRNN"
) -> Figure:
    """Key metrics by method: one panel per metric, one point per seed, sessions apart.

    Args:
        table: long DataFrame with columns ``session``, ``method``, ``seed`` and one
            column per metric key.
        metrics: ``[(label, column)]`` to show.
    """
    if table is None or len(table) == 0 or not metrics:
        return _empty("no metrics to compare")
    methods = _method_order(table["method"].unique(), reference)
    sessions = list(dict.fromkeys(table["session"]))
    n = len(metrics)
    ncol = min(n, 3)
    nrow = int(np.ceil(n / ncol))
    fig = _figure(4.0 * ncol + 1.5, 2.9 * nrow)
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    width = 0.7 / max(len(sessions), 1)
    for ax, (label, col) in zip(axes, metrics, strict=False):
        for s_i, sess in enumerate(sessions):
            c = _COLORS[s_i % len(_COLORS)]
            for m_i, meth in enumerate(methods):
                vals = (
                    table[(table["session"] == sess) & (table["method"] == meth)][col]
                    .astype(float)
                    .dropna()
                    .values
                )
                if vals.size == 0:
                    continue
                x = m_i - 0.35 + width * (s_i + 0.5)
                ax.scatter(
                    np.full(vals.size, x),
                    vals,
                    s=12,
                    color=c,
                    alpha=0.8,
                    label=sess
                    if m_i == 0
                    or (ax is axes[0] and not ax.get_legend_handles_labels()[1].count(sess))
                    else None,
                )
                ax.hlines(vals.mean(), x - width * 0.4, x + width * 0.4, color=c, lw=2)
        ax.set_xlim(-0.6, len(methods) - 0.4)
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels(methods, rotation=35, ha="right", fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", color="#eee")
    for ax in axes[n:]:
        ax.axis("off")
    handles, labels = axes[0].get_legend_handles_labels()
    uniq = dict(zip(labels, handles, strict=False))
    if len(sessions) > 1:
        fig.legend(
            uniq.values(),
            uniq.keys(),
            loc="outside right upper",
            fontsize=8,
            frameon=False,
            title="session",
        )
    return fig


def plot_paired_differences(
    table, metrics: list[tuple[str, str]], reference: str = "DisRNN"
) -> Figure:
    """Per-seed difference of each method to ``reference`` (same session and seed),
    one panel per metric; a point per seed, the bar the mean."""
    if table is None or len(table) == 0 or not metrics or reference not in set(table["method"]):
        return _empty(f"no {reference} runs to pair against")
    ref = table[table["method"] == reference].set_index(["session", "seed"])
    methods = [m for m in _method_order(table["method"].unique(), reference) if m != reference]
    n = len(metrics)
    ncol = min(n, 3)
    nrow = int(np.ceil(n / ncol))
    fig = _figure(4.0 * ncol + 0.5, 2.9 * nrow)
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.axis("off")
    for ax, (label, col) in zip(axes, metrics, strict=False):
        ax.set_xlim(-0.6, len(methods) - 0.4)
        for m_i, meth in enumerate(methods):
            sub = table[table["method"] == meth].set_index(["session", "seed"])
            idx = sub.index.intersection(ref.index)
            d = (sub.loc[idx, col].astype(float) - ref.loc[idx, col].astype(float)).dropna().values
            if d.size == 0:
                continue
            ax.scatter(np.full(d.size, m_i), d, s=12, color=_COLORS[m_i % len(_COLORS)])
            ax.hlines(d.mean(), m_i - 0.3, m_i + 0.3, color="k", lw=1.5)
        ax.axhline(0, color="#888", lw=0.8)
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels(methods, rotation=35, ha="right", fontsize=8)
        ax.set_title(f"{label}: method − {reference}", fontsize=9)
    return fig


def _method_order(methods, reference: str = "DisRNN") -> list[str]:
    """``methods`` in the registry's order (``disrnn.fit.config.METHODS``), ``reference``
    first, unknown names last (sorted)."""
    from disrnn.fit.config import METHODS

    known = list(METHODS)
    methods = list(methods)
    ordered = [m for m in known if m in methods] + sorted(m for m in methods if m not in known)
    if reference in ordered:
        ordered.remove(reference)
        ordered.insert(0, reference)
    return ordered
