"""The markdown tables the benchmark scripts print: mean +- sd over seeds per method."""

from __future__ import annotations

import numpy as np


def fmt_mean_sd(values: list) -> str:
    """'mean +- sd' (sample sd; 0 for one value) of the finite values, 'n/a' if none."""
    v = np.array([np.nan if x is None else float(x) for x in values], dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "n/a"
    return f"{v.mean():.3f} +- {v.std(ddof=1) if v.size > 1 else 0.0:.3f}"


def markdown_table(rows: list[dict], order: list[str], columns) -> str:
    """One row per method of ``order`` that has rows; ``columns`` = [(key, header)]."""
    head = "| method | " + " | ".join(name for _, name in columns) + " | n |"
    lines = [head, "|" + "---|" * (len(columns) + 2)]
    for method in order:
        sel = [r for r in rows if r["method"] == method]
        if sel:
            cells = [fmt_mean_sd([r.get(k) for r in sel]) for k, _ in columns]
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {len(sel)} |")
    return "\n".join(lines)
