"""The summary report over sessions: every session x method on the key metrics, each
session's model selection, and links to the session reports."""

from __future__ import annotations

import os
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

from disrnn import plotting
from disrnn.report.render import _env, _fig, _write
from disrnn.report.results import REFERENCE_METHOD, check_comparable, key_metrics, load_eval
from disrnn.report.selection import selection_rows
from disrnn.report.summary_box import seeds_text
from disrnn.report.tables import _method_order, _stat_cell, reference_cautions

__all__ = ["render_summary_report"]


def render_summary_report(eval_dirs, out: str | os.PathLike, selections=None) -> Path:
    """Write ``index.html``: every session x method on the key metrics, each session's
    selected K, partition and verdict, with links to each session's report
    (``<session>.html`` beside ``out``).

    Args:
        eval_dirs: evaluation folders of every session; out: the HTML file.
        selections: selection folders (``disrnn select``), matched to sessions by their
            selection.json ``session``; a session without one says so.

    Returns:
        ``out`` as a Path.

    Raises:
        FileNotFoundError: an evaluation folder's ``metrics.json`` is missing.
        ValueError: ``eval_dirs`` is empty.
    """
    import pandas as pd

    eval_dirs = [eval_dirs] if isinstance(eval_dirs, str | os.PathLike) else list(eval_dirs)
    if not eval_dirs:
        raise ValueError("render_summary_report needs at least one evaluation folder; got none")
    results = [load_eval(d) for d in eval_dirs]
    check_comparable(results)
    keys = key_metrics(results)
    sessions = list(dict.fromkeys(r.session for r in results))
    methods = _method_order({r.method for r in results})
    rows = _summary_rows(results, sessions, methods, keys)
    long = pd.DataFrame(
        [{"session": r.session, "method": r.method, "seed": r.seed, **r.values} for r in results]
    )
    figs = _summary_figures(long, keys, methods)
    links = [{"session": s, "href": urllib.parse.quote(f"{s}.html")} for s in sessions]
    cautions = [
        {"session": s, "text": text}
        for s in sessions
        for text in reference_cautions([r for r in results if r.session == s])
    ]
    html = (
        _env()
        .get_template("summary.html")
        .render(
            title="DisRNN results: summary",
            keys=keys,
            rows=rows,
            links=links,
            cautions=cautions,
            selections=_selection_table(sessions, selections),
            figures=figs,
            n_evals=len(results),
            reference=REFERENCE_METHOD,
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        )
    )
    return _write(out, html)


def _selection_table(sessions: list, selections) -> list[dict]:
    """One row per session: its selection's K, partition, verdict (or that none ran)."""
    found = selection_rows(selections)
    none = {"K": "–", "partition": "–", "verdict": "no selection run", "sentence": ""}
    return [{"session": s, **found.get(s, none)} for s in sessions]


def _summary_rows(results, sessions: list, methods: list, keys) -> list[dict]:
    """One table row per (session, method) with runs: the seeds and a mean +- sd cell per
    key metric."""
    rows = []
    for s in sessions:
        for m in methods:
            runs = [r for r in results if r.session == s and r.method == m]
            if not runs:
                continue
            rows.append(
                {
                    "session": s,
                    "method": m,
                    "n": len(runs),
                    "seeds": seeds_text(sorted(runs, key=lambda r: r.seed or 0)),
                    "cells": [_stat_cell([r.values.get(k) for r in runs]) for _, k in keys],
                }
            )
    return rows


def _summary_figures(long, keys, methods: list) -> list:
    """The summary's figures: every key metric by session and method, and (with another
    method beside DisRNN) each method paired against DisRNN."""
    figs = [
        _fig(
            "Key metrics, every session and method",
            plotting.plot_metric_comparison,
            long,
            keys,
            caption="One point per seed, coloured by session; bars: mean over seeds.",
        )
    ]
    if REFERENCE_METHOD in methods and len(methods) > 1:
        figs.append(
            _fig(
                "Paired against DisRNN",
                plotting.plot_paired_differences,
                long,
                keys,
                caption="Each method minus DisRNN on the same session and seed; bar: mean.",
            )
        )
    return figs
