"""Metric tables of the reports: method order, metric keys, mean ± sd cells, paired
differences to the reference method, per-seed values."""

from __future__ import annotations

from collections import defaultdict

from disrnn import plotting
from disrnn.report.render import fmt
from disrnn.report.results import (
    HEADLINE_METRICS,
    REFERENCE_METHOD,
    EvalResult,
    key_metrics,
    mean_sd,
    natural_key,
)


def _method_order(methods) -> list[str]:
    return plotting._method_order(methods, REFERENCE_METHOD)


def _metric_keys(results: list[EvalResult]) -> tuple[list[tuple[str, str]], int]:
    """([(label, key)], n_headline): the key metrics, the headline metrics present,
    then every other numeric metric (natural order)."""
    keys = key_metrics(results)
    present = {k for r in results for k, v in r.values.items() if v is not None}
    seen = {k for _, k in keys}
    head = keys + [(lab, k) for lab, k in HEADLINE_METRICS if k in present and k not in seen]
    seen |= {k for _, k in head}
    rest = sorted(present - seen, key=natural_key)
    return head + [(k, k) for k in rest], len(head)


def _stat_cell(values) -> dict:
    m, s, n = mean_sd(values)
    if n and abs(s) <= 1e-9 * max(abs(m), 1e-12):
        s = 0.0  # rounding noise of equal values, not a spread
    return {
        "text": "–" if n == 0 else (f"{fmt(m)} ± {fmt(s, 2)}" if n > 1 else fmt(m)),
        "mean": m,
        "sd": s,
        "n": n,
    }


def _metrics_tables(by_method: dict[str, list[EvalResult]], metrics) -> dict:
    """Mean ± sd over seeds, the paired difference to DisRNN, and every seed's value."""
    methods = list(by_method)
    ref = by_method.get(REFERENCE_METHOD, [])
    ref_by_seed = {r.seed: r for r in ref}
    rows, paired, seeds = [], [], []
    for label, key in metrics:
        cells = [_stat_cell([r.values.get(key) for r in by_method[m]]) for m in methods]
        if all(c["n"] == 0 for c in cells):
            continue
        rows.append({"label": label, "key": key, "cells": cells})
        pcells = []
        for m in methods:
            if m == REFERENCE_METHOD or not ref:
                pcells.append({"text": "", "mean": float("nan"), "sd": float("nan"), "n": 0})
                continue
            diffs = []
            for r in by_method[m]:
                base = ref_by_seed.get(r.seed)
                a = r.values.get(key)
                b = None if base is None else base.values.get(key)
                if a is not None and b is not None:
                    diffs.append(a - b)
            c = _stat_cell(diffs)
            if c["n"]:
                c["text"] = ("+" if c["mean"] > 0 else "") + c["text"]
            pcells.append(c)
        paired.append({"label": label, "key": key, "cells": pcells})
        seeds.append(
            {
                "label": label,
                "key": key,
                "cells": [
                    {"value": r.values.get(key), "text": fmt(r.values.get(key))}
                    for m in methods
                    for r in by_method[m]
                ],
            }
        )
    seed_cols = [(m, r.seed) for m in methods for r in by_method[m]]
    return {
        "methods": methods,
        "rows": rows,
        "paired": paired,
        "seeds": seeds,
        "seed_cols": seed_cols,
    }


def _group_by_method(results: list[EvalResult]) -> dict[str, list[EvalResult]]:
    grouped: dict[str, list[EvalResult]] = defaultdict(list)
    for r in results:
        grouped[r.method].append(r)
    out = {}
    for m in _method_order(grouped):
        out[m] = sorted(grouped[m], key=lambda r: (r.seed is None, r.seed or 0))
    return out


# Reference methods (disrnn.evaluation.references) and the metric DisRNN must beat:
# (method, flattened key pattern, sentence shown when DisRNN's mean is below). Keys are
# the fits' (a reference's are renamed on loading, disrnn.report.reference_keys): the
# smoothing's NLB baseline is its co_bps_smoothed, its causal twin its co_bps.
REFERENCE_CHECKS: tuple[tuple[str, str, str], ...] = (
    (
        "smoothing",
        "co_bps_smoothed",
        "the latents predict held-out neurons worse than smoothed spikes do: "
        "treat the modules with caution",
    ),
    (
        "smoothing",
        "co_bps",
        "the network's one-step predictions, from which W is read, predict held-out "
        "neurons worse than smoothed past spikes do: treat the connectivity with caution",
    ),
    (
        "smoothing",
        "behavior_r2_nlb_smoothed.{name}",
        "the model's rates decode behavior worse than smoothed spikes do (NLB's ridge "
        "decoding): treat the modules with caution",
    ),
    (
        "pca",
        "behavior_r2.{name}.all",
        "the latents explain behavior worse than PCA does: treat the modules with caution "
        "(K latents keep what predicts the next bin, K principal components what varies most; "
        "a larger rank may hold both)",
    ),
)


#: a reference key (pattern) -> DisRNN's keys compared with it, the first one present
#: wins (a key not listed: the same key): against NLB's smoothing and its behavior
#: decoding the whole-trial smoothing posterior (as NLB allows), else, for a fit without
#: one, the causal one-step prediction
OUR_KEYS = {
    "co_bps_smoothed": ("co_bps_smoothed", "co_bps"),
    "behavior_r2_nlb_smoothed.{name}": (
        "behavior_r2_nlb_smoothed.{name}",
        "behavior_r2_nlb.{name}",
    ),
}


def our_value(dis: list[EvalResult], pattern: str, key: str) -> tuple[str, float, int]:
    """(key, mean over seeds, count) of DisRNN's number (over its runs ``dis``) compared
    with the reference's ``key``, an instance of ``pattern`` (whose ``{name}`` it fills
    in); count 0 when DisRNN has none of the ``OUR_KEYS`` of ``pattern``."""
    prefix, _, suffix = pattern.partition("{name}")
    name = key[len(prefix) : len(key) - len(suffix)]  # "" for a pattern without {name}
    for ours_pattern in OUR_KEYS.get(pattern, (pattern,)):
        ours_key = ours_pattern.replace("{name}", name)
        mean, _, n = mean_sd([r.values.get(ours_key) for r in dis])
        if n:
            return ours_key, mean, n
    return key, float("nan"), 0


def reference_cautions(results: list[EvalResult]) -> list[str]:
    """Plain sentences for each reference whose mean (over seeds) beats DisRNN's on one
    session (``REFERENCE_CHECKS``): NLB's smoothing against DisRNN's smoothing-posterior
    co-bps where it has one, else its causal co-bps (``OUR_KEYS``); the causal smoothing
    against DisRNN's causal co-bps; NLB's behavior decoding likewise; behavior R² (any
    behavior variable, ``all`` latents) for ``pca``. Empty when DisRNN or the reference
    is absent.

    Args:
        results: the evaluations of one session (every method and seed).
    """
    by_method = _group_by_method(results)
    ref = by_method.get(REFERENCE_METHOD)
    out = []
    for method, pattern, sentence in REFERENCE_CHECKS:
        if not ref or method not in by_method:
            continue
        keys = {k for r in by_method[method] for k in r.values}  # the reference's numbers
        if "{name}" in pattern:
            prefix, suffix = pattern.split("{name}")
            cands = sorted(k for k in keys if k.startswith(prefix) and k.endswith(suffix))
        else:
            cands = [pattern]
        worse = []
        for key in cands:
            theirs, _, n2 = mean_sd([r.values.get(key) for r in by_method[method]])
            ours_key, ours, n1 = our_value(ref, pattern, key)
            if n1 and n2 and ours < theirs:
                worse.append(f"{ours_key} {fmt(ours)} vs {method} {key} {fmt(theirs)}")
        if worse:
            out.append(f"{REFERENCE_METHOD}: {sentence} ({'; '.join(worse)}).")
    return out
