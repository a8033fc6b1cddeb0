"""The box that opens a session report: what the session says and how far to trust it.

Lines, each from saved results only:

- the modules: a verdict line when a model selection gave one (``verdict``; none is
  made up here), else the groups DisRNN was fitted with and that they were set by hand;
  the units per dominant group and, with named areas, how well the groups follow them;
- prediction: DisRNN against the best baseline (the trained method with the highest
  mean) and against the session's reference: co-bps for spike counts with held-out units
  (the smoothing reference; and how much lower each is with NLB's null), else the test
  log-likelihood against the baselines and the condition decoding (or behavior R²)
  against PCA;
- agreement across seeds: how many seeds, the spread of that metric and the adjusted
  Rand index of the unit assignments (:func:`disrnn.evaluation.unit_maps.seed_agreement`);
- warnings: a fit whose validation loss never improved after the first epoch that could
  count, one whose best epoch came within its first ``EARLY_EPOCHS`` epochs, one still
  improving at its last epoch (it ran out of epochs); for a fit with a rotation init,
  these of its beta = 0 pre-fit, and of the training after the rotation only the last
  (its first weights there are the rotated pre-fit, a trained model).
"""

from __future__ import annotations

import math

from disrnn.report.reference_keys import reference_name
from disrnn.report.render import fmt
from disrnn.report.results import REFERENCE_METHOD, EvalResult, mean_sd
from disrnn.report.tables import OUR_KEYS, REFERENCE_CHECKS, our_value

__all__ = ["EARLY_EPOCHS", "fit_warnings", "seeds_text", "summary_box"]

#: a best epoch within this many epochs of the first one that could count is "early"
EARLY_EPOCHS = 5
REFERENCES = tuple(m for m, _, _ in REFERENCE_CHECKS)


def seeds_text(runs: list[EvalResult]) -> str:
    """``"1 seed (0)"``, ``"3 seeds (0, 1, 2)"``: a count and the seeds, never a bare id."""
    s = [str(r.seed) for r in runs]
    return f"{len(s)} seed{'s' if len(s) != 1 else ''} ({', '.join(s)})"


def _stat(runs: list[EvalResult], key: str) -> tuple[float, float, int]:
    return mean_sd([r.values.get(key) for r in runs])


def _value(mean: float, sd: float, n: int) -> str:
    return f"{fmt(mean, 3)} ± {fmt(sd, 2)}" if n > 1 else fmt(mean, 3)


def _versus(ours: float, theirs: float) -> str:
    d = ours - theirs
    if d == 0:
        return "DisRNN equal"
    return f"DisRNN {'higher' if d > 0 else 'lower'} by {fmt(abs(d), 2)}"


def _group_sizes(r: EvalResult) -> list[str]:
    """The fit's group sizes: metrics.json ``groups`` ("3,3"), else config.json's list."""
    g = r.metrics.get("groups")
    if isinstance(g, str) and g.strip():
        return [s.strip() for s in g.split(",") if s.strip()]
    return [str(int(x)) for x in (r.config or {}).get("groups") or []]


def _modules_line(dis: list[EvalResult], selected: list | None = None) -> str:
    sizes = _group_sizes(dis[0])
    n = len(sizes)
    if selected is None:
        how = "as set in the config (no model selection ran for this session)"
    elif sizes == [str(int(g)) for g in selected]:
        how = "the partition the model selection gives fits (groups: auto, or the same by hand)"
    else:
        how = "as set in the config, not the model selection's partition"
    text = f"DisRNN was fitted with {n} group{'s' if n != 1 else ''} of {' + '.join(sizes)} latents, {how}."
    counts = {
        k.split(".", 1)[1]: v
        for k, v in dis[0].values.items()
        if k.startswith("unit_group_counts.") and v is not None
    }
    if counts:
        parts = [
            f"{int(v)} {'mixed' if k == 'mixed' else f'in group {k}'}" for k, v in counts.items()
        ]
        text += f" Units (seed {dis[0].seed}): {', '.join(parts)}."
    ari, _, n_ari = _stat(dis, "unit_area_ari")
    if n_ari:
        text += f" Groups against brain areas: adjusted Rand index {fmt(ari, 2)} (1 = each group is one area)."
    return text


def _prediction_lines(by_method: dict[str, list[EvalResult]]) -> list[str]:
    dis = by_method[REFERENCE_METHOD]
    baselines = {
        m: r for m, r in by_method.items() if m != REFERENCE_METHOD and m not in REFERENCES
    }
    lines = []
    co = next((k for k in OUR_KEYS["co_bps_smoothed"] if _stat(dis, k)[2]), None)
    key, label = (
        (co, "co-bps of the held-out units")
        if co
        else ("test_ll_per_bin_neuron", "test log-likelihood per bin and neuron")
    )
    if co == "co_bps_smoothed":
        label += " (smoothing posterior)"
    ours = _stat(dis, key)
    if ours[2]:
        scored = {m: _stat(r, key) for m, r in baselines.items()}
        scored = {m: s for m, s in scored.items() if s[2]}
        text = f"{label}: DisRNN {_value(*ours)}"
        if scored:
            best = max(scored, key=lambda m: scored[m][0])
            top = scored[best][0]
            # post-hoc methods predict as their lrRNN does: equal up to float rounding
            tied = [m for m in scored if abs(scored[m][0] - top) <= 1e-6 * max(1.0, abs(top))]
            names = f" {best}" if len(tied) == 1 else f"s {', '.join(tied)} (tied)"
            text += f"; best baseline{names} {_value(*scored[best])} ({_versus(ours[0], top)})"
        else:
            text += "; no baseline method in this run"
        lines.append(text + ".")
    if co:
        lines += _null_line(dis)
    for method in dict.fromkeys(m for m, _, _ in REFERENCE_CHECKS):
        if method in by_method:
            found = [
                line
                for m, pattern, _ in REFERENCE_CHECKS
                if m == method
                for line in _reference_lines(dis, method, pattern, by_method[method])
            ]
            lines.extend(
                found or [f"The {method} reference has no number to compare with DisRNN's."]
            )
    return lines


def _null_line(dis: list[EvalResult]) -> list[str]:
    """How DisRNN's co-bps reads with NLB's null (``co_bps_null_shift``), when it moves
    them by at least 0.001."""
    shift = _stat(dis, "co_bps_null_shift")
    if not shift[2] or not math.isfinite(shift[0]) or round(shift[0], 3) == 0:
        return []
    return [
        f"With NLB's null (each held-out unit's mean over the test bins, not over the training trials) every co-bps on these bins is {fmt(shift[0], 3)} lower; compare that with NLB's published numbers."
    ]


def _reference_lines(dis, method: str, pattern: str, ref: list[EvalResult]) -> list[str]:
    if "{name}" in pattern:
        prefix, suffix = pattern.split("{name}")
        keys = sorted(
            {k for r in ref for k in r.values if k.startswith(prefix) and k.endswith(suffix)}
        )
        keys = ["condition_accuracy", *keys]
    else:
        keys = [pattern]
    for key in keys:
        theirs = _stat(ref, key)
        # DisRNN's number of the same kind (whole-trial posterior where it has one)
        ours_key = our_value(dis, key if key == "condition_accuracy" else pattern, key)[0]
        if theirs[2] and _stat(dis, ours_key)[2]:
            ours = _stat(dis, ours_key)
            text = f"{key} against {reference_name(method, key)}: DisRNN {_value(*ours)} ({ours_key}) vs {fmt(theirs[0], 3)} ({_versus(ours[0], theirs[0])})"
            chance = _stat(ref, "condition_chance")
            if key == "condition_accuracy" and chance[2]:
                n = ref[0].metrics.get("n_test_trials")
                text += f"; chance {fmt(chance[0], 3)}, the most common condition's share of the {n} test trials"
            return [text + "."]
    return []


def _seeds_line(dis: list[EvalResult], agreement: dict | None) -> str:
    if len(dis) == 1:
        return f"DisRNN: {seeds_text(dis)}; agreement across seeds needs two or more seeds."
    text = f"DisRNN: {seeds_text(dis)}"
    if agreement is not None and agreement.get("ari_mean") is not None:
        text += f"; unit assignments agree with adjusted Rand index {fmt(agreement['ari_mean'], 2)} on average over pairs of seeds (lowest {fmt(agreement['ari_min'], 2)})"
        if agreement.get("ari_dominant_mean") is not None:
            text += f", {fmt(agreement['ari_dominant_mean'], 2)} (lowest {fmt(agreement['ari_dominant_min'], 2)}) on the units one group dominates in both seeds"
    return text + "."


def fit_warnings(results: list[EvalResult]) -> list[str]:
    """One sentence per method and kind of problem, naming the seeds (see the module)."""
    found: dict[tuple[str, str], list[str]] = {}
    for r in results:
        problem = _fit_problem(r)
        if problem is not None:
            found.setdefault((r.method, problem), []).append(str(r.seed))
    return [
        f"{m} seed{'s' if len(s) > 1 else ''} {', '.join(s)}: {p}" for (m, p), s in found.items()
    ]


def _ran_out(what: str, run: int) -> str:
    return f"{what} was still improving at the last epoch ({run}): it ran out of epochs; more epochs may change its numbers."


def _phase_problem(best: int, run: int, stop: str, first: int, what: str) -> str | None:
    """The problem of one training phase (``what`` names its loss), or None."""
    if best <= first and run > first + 1:
        return f"{what} never improved after epoch {first + 1} (of {run} run): it kept its first weights; its numbers describe an untrained model."
    if best == run - 1 and stop == "max_epochs":
        return _ran_out(what, run)
    if best - first < EARLY_EPOCHS:
        return f"{what} came to its best at epoch {best + 1} of {run} run: it stopped improving in its first few epochs; treat its numbers as those of a barely trained model."
    return None


def _fit_problem(r: EvalResult) -> str | None:
    """A fit's problem. A fit with a rotation init (``fit_info["pretrain"]``) trained the
    beta = 0 objective first and then the full objective from its rotated weights: its
    first weights of that second phase are a trained model, so keeping them (as early
    stopping does where the penalty only costs likelihood) is no problem; the pre-fit is
    judged instead, and the second phase only for running out of epochs."""
    best, run = r.metrics.get("best_epoch"), r.metrics.get("epochs")
    fi = r.fit_info or {}
    best = fi.get("best_epoch", best)
    run = fi.get("epochs", fi.get("epochs_run", run))
    if best is None or run is None or int(best) < 0:
        return None
    cfg = r.config or {}
    max_epochs = int(cfg.get("epochs") or run)
    first = max(math.ceil(float(cfg.get("warmup") or 0.0) * max_epochs) - 1, 0)
    best, run, stop = int(best), int(run), fi.get("stop_reason", "max_epochs")
    pre = fi.get("pretrain") or {}
    if pre.get("best_epoch") is None or pre.get("epochs_run") is None:
        return _phase_problem(best, run, stop, first, "the validation loss")
    problem = _phase_problem(
        int(pre["best_epoch"]), int(pre["epochs_run"]), pre.get("stop_reason", "max_epochs"),
        0, "the validation loss of its beta = 0 pre-fit (before the rotation)",
    )  # fmt: skip
    if problem is None and best == run - 1 and stop == "max_epochs":
        problem = _ran_out("the validation loss of the training after the rotation init", run)
    return problem


def summary_box(
    by_method: dict[str, list[EvalResult]],
    agreement: dict | None = None,
    verdict: str | None = None,
    selected: list | None = None,
) -> dict:
    """What the summary box shows: {"verdict" (or None), "lines" [(label, sentence)],
    "warnings" [sentence]}.

    Args:
        by_method: the session's evaluations by method (ordered, seeds sorted).
        agreement: :func:`~disrnn.evaluation.unit_maps.seed_agreement` of DisRNN's seeds.
        verdict: the model selection's one-sentence answer, when a selection ran;
        selected: the groups it gives ``groups: auto`` (selection.json ``fit_groups``).
    """
    results = [r for runs in by_method.values() for r in runs]
    lines = []
    dis = by_method.get(REFERENCE_METHOD)
    if dis:
        lines.append(("Modules", _modules_line(dis, selected if verdict else None)))
        lines += [("Prediction", text) for text in _prediction_lines(by_method)]
        lines.append(("Seeds", _seeds_line(dis, agreement)))
    else:
        lines.append(("Modules", f"no {REFERENCE_METHOD} fit in this report."))
    return {"verdict": verdict, "lines": lines, "warnings": fit_warnings(results)}
