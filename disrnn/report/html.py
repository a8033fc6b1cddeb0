"""Self-contained HTML reports: one per session and a summary over sessions.

Figures come from :mod:`disrnn.plotting` and are embedded as base64 PNG, styles are
inline, and no page refers to another host, so a report opens offline from a file.
Templates are Jinja2 with autoescaping on: every string from an NWB file (session
description, condition labels, unit areas, file paths) is escaped.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import urllib.parse
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from disrnn import plotting
from disrnn._atomic import atomic_dir, atomic_file
from disrnn.report.results import (
    HEADLINE_METRICS,
    REFERENCE_METHOD,
    EvalResult,
    key_metrics,
    load_eval,
    mean_sd,
    natural_key,
    representative,
)

log = logging.getLogger(__name__)

_PROVENANCE_KEYS = (
    ("source", "source"),
    ("dandiset", "dandiset"),
    ("dandiset_version", "version"),
    ("asset_path", "asset"),
    ("nwb_path", "NWB file"),
    ("sha256", "sha256"),
    ("kind", "activity kind"),
    ("bin_width", "bin width (s)"),
    ("alignment", "alignment"),
    ("window_start", "window start (s)"),
    ("window_end", "window end (s)"),
)


def _env():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("disrnn.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    return env


def fmt(value, digits: int = 4) -> str:
    """A number for a table cell: 4 significant digits, '–' for missing."""
    if value is None:
        return "–"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not np.isfinite(v):
        return "–"
    return f"{v:.{digits}g}"


def figure_to_png(fig, palette: bool = True) -> bytes:
    """PNG bytes of a matplotlib Figure at its own dpi.

    With ``palette`` the image is reduced to an adaptive 256-colour palette (Pillow),
    which keeps plots visually unchanged and makes them about 3x smaller, so a report
    of 7 methods stays a few MB.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    fig.clear()
    if not palette:
        return buf.getvalue()
    from PIL import Image

    img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    out = io.BytesIO()
    img.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(
        out, format="PNG", optimize=True
    )
    return out.getvalue()


def figure_to_data_uri(fig) -> str:
    """Encode a matplotlib Figure as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(figure_to_png(fig)).decode("ascii")


def _fig(title: str, make, *args, caption: str = "", **kwargs) -> dict:
    """Run a plotting function; a failure becomes a note in the report, not a crash."""
    try:
        uri = figure_to_data_uri(make(*args, **kwargs))
        return {"title": title, "src": uri, "caption": caption, "error": "", "note": ""}
    except Exception as err:  # a report must still render when one figure cannot
        log.warning("figure %r failed: %s", title, err, exc_info=True)
        return {
            "title": title,
            "src": "",
            "caption": caption,
            "error": f"{type(err).__name__}: {err}",
            "note": "",
        }


def _note(title: str, note: str) -> dict:
    """A figure slot that holds only a sentence (the figure does not apply)."""
    return {"title": title, "src": "", "caption": "", "error": "", "note": note}


# ---------------------------------------------------------------------------- provenance
def _provenance(ds) -> dict:
    attrs = dict(ds.attrs)
    rows = []
    for key, label in _PROVENANCE_KEYS:
        if key in attrs and str(attrs[key]) != "":
            rows.append((label, _plain(attrs[key])))
    known = {k for k, _ in _PROVENANCE_KEYS} | {"filters", "dropped_trials"}
    other = [(k, _plain(v)) for k, v in sorted(attrs.items()) if k not in known]

    filters = []
    raw = attrs.get("filters")
    if raw not in (None, ""):
        try:
            parsed = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError:
            parsed = raw
        if isinstance(parsed, dict):
            for name, spec in parsed.items():
                if isinstance(spec, dict):
                    filters.append(
                        (name, _plain(spec.get("value", spec)), _plain(spec.get("removed", "")))
                    )
                else:
                    filters.append((name, _plain(spec), ""))
        elif isinstance(parsed, list):
            for spec in parsed:
                if isinstance(spec, dict):
                    filters.append(
                        (
                            _plain(spec.get("name", spec.get("filter", ""))),
                            _plain(spec.get("value", "")),
                            _plain(spec.get("removed", "")),
                        )
                    )
                else:
                    filters.append((_plain(spec), "", ""))
        else:
            filters.append((_plain(parsed), "", ""))
    dropped = attrs.get("dropped_trials", "")
    try:
        parsed_drop = json.loads(dropped) if isinstance(dropped, str) and dropped else dropped
    except json.JSONDecodeError:
        parsed_drop = dropped
    if isinstance(parsed_drop, dict):
        dropped = ", ".join(
            f"{reason}: {v.get('count', v) if isinstance(v, dict) else v}"
            for reason, v in parsed_drop.items()
        )

    n_trials = int(ds.sizes["trial"])
    n_units = int(ds.sizes["unit"])
    counts = [
        ("trials", n_trials),
        ("units", n_units),
        ("time bins per trial", int(ds.sizes["time"])),
    ]
    if "heldout" in ds.coords:
        h = int(np.asarray(ds["heldout"].values, bool).sum())
        counts.append(("held-in / held-out units", f"{n_units - h} / {h}"))
    if "time" in ds.coords and ds.sizes["time"]:
        t = ds["time"].values
        counts.append(("bin centres (s)", f"{t[0]:.4g} … {t[-1]:.4g}"))
    splits = []
    if "split" in ds.coords:
        vals, cnt = np.unique(ds["split"].values.astype(str), return_counts=True)
        order = {"train": 0, "val": 1, "test": 2}
        splits = sorted(
            zip(vals.tolist(), cnt.tolist(), strict=True), key=lambda p: order.get(p[0], 9)
        )
    conditions = []
    if "condition" in ds.coords:
        vals, cnt = np.unique(ds["condition"].values.astype(str), return_counts=True)
        conditions = list(zip(vals.tolist(), cnt.tolist(), strict=True))
    areas = []
    if "area" in ds.coords:
        vals, cnt = np.unique(ds["area"].values.astype(str), return_counts=True)
        areas = list(zip(vals.tolist(), cnt.tolist(), strict=True))
    behavior = [n for n, v in ds.data_vars.items() if v.attrs.get("kind") == "behavior"]
    truth = [n for n in ("true_latents", "true_rates", "true_A", "true_B") if n in ds]
    return {
        "rows": rows,
        "other": other,
        "filters": filters,
        "no_filters": raw is not None and not filters,
        "dropped": _plain(dropped),
        "counts": counts,
        "splits": splits,
        "conditions": conditions[:50],
        "n_conditions": len(conditions),
        "areas": areas,
        "behavior": behavior,
        "truth": truth,
    }


def _plain(value) -> str:
    if isinstance(value, np.ndarray):
        return ", ".join(str(v) for v in value.tolist())
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# ------------------------------------------------------------------------------- metrics
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


# ------------------------------------------------------------------------ session report
def _predicted(r: EvalResult, ds):
    """Predicted rates saved by the evaluation, else recomputed from the saved fit."""
    pred = r.predicted
    if pred is not None or r.fit_dir is None or not (r.fit_dir / "weights.pt").exists():
        return pred, ""
    try:
        from disrnn.training import load_fit

        return load_fit(r.fit_dir).predict(ds), "recomputed from the saved fit"
    except Exception as err:  # the report still renders without this figure
        log.warning("could not recompute predictions from %s: %s", r.fit_dir, err)
        return None, ""


def _method_section(method: str, runs: list[EvalResult], ds, rep_key: str | None) -> dict:
    r = representative(runs, rep_key)
    cond = ds["condition"] if "condition" in ds.coords else None
    pred, pred_note = _predicted(r, ds)
    figs = [
        _fig(
            "Loss curves",
            plotting.plot_loss_curves,
            r.losses,
            caption="Each loss term against epoch, train and validation splits.",
        ),
        _fig(
            "Latents by group",
            plotting.plot_latents,
            r.latents,
            cond,
            caption="Left: condition-averaged latents of test trials (trajectory in the plane of a group's first two latents, or the time course of a one-latent group). Right: single test trials.",
        ),
        *(
            [
                _fig(
                    "Latents against the truth",
                    plotting.plot_latents_vs_truth,
                    r.latents_dataset,
                    caption="Inferred latents mapped onto the true latents by the evaluation's matched groupwise affine maps, two test trials.",
                )
            ]
            if r.latents_dataset is not None and "aligned_latents" in r.latents_dataset
            else []
        ),
        _fig(
            "Predicted against observed",
            plotting.plot_predicted_vs_observed,
            ds,
            pred,
            caption="One-step-ahead predictions on test trials: condition-averaged PSTH bins of every unit, and PSTHs of the highest-rate units (data solid, model dashed). "
            + pred_note,
        ),
        *_connectivity_figs(r.connectivity),
    ]
    figs += [
        _fig(
            "Free-running rollout",
            plotting.plot_rollout,
            ds,
            r.rollout,
            caption="The network run on its own from real initial bins (sampled feedback), against the test trials: mean rates, condition-averaged population PSTHs, pairwise correlations between units, and k-step-ahead prediction quality.",
        ),
    ]
    return _finish_section(method, runs, r, rep_key, figs)


def _connectivity_figs(conn) -> list[dict]:
    if conn is None or ("W" not in conn and "J" not in conn):
        reason = "" if conn is None else str(conn.attrs.get("reason", ""))
        text = "No connectivity: " + (reason or "the evaluation saved no W or J.")
        return [_note("Connectivity and eigenvalues", text)]
    return [
        _fig(
            "Connectivity",
            plotting.plot_connectivity,
            conn,
            caption="W = AB (unit × unit), J = BA (latent × latent; group blocks outlined) and each group's W_g = A[:, g] B[g, :], all on one colour scale; with a ground truth, the true W and true W_g (under the fitted group matched to each) below.",
        ),
        _fig(
            "Eigenvalues",
            plotting.plot_eigenvalues,
            conn,
            caption="Eigenvalues of J and of each group's block; dotted: unit circle.",
        ),
    ]


def _finish_section(method, runs, r, rep_key, figs) -> dict:
    info = []
    cfg = r.config or {}
    for k in ("groups", "beta", "alpha", "likelihood", "epochs", "history", "lr"):
        if k in cfg:
            info.append((k, _plain(cfg[k])))
    fi = r.fit_info or {}
    for k in ("seconds", "epochs", "best_epoch", "stop_reason"):
        if k in fi:
            info.append((f"fit {k}", fmt(fi[k]) if isinstance(fi[k], float) else _plain(fi[k])))
    return {
        "method": method,
        "anchor": "m-" + "".join(c if c.isalnum() else "-" for c in method),
        "seed": r.seed,
        "seeds": [x.seed for x in runs],
        "eval_dir": str(r.path),
        "rep_key": rep_key or "",
        "info": info,
        "figures": figs,
    }


def _session_context(session: str, dataset_path, eval_dirs) -> dict:
    """Everything the session template shows (figures drawn, tables computed)."""
    from disrnn.data.io import load_dataset

    eval_dirs = [eval_dirs] if isinstance(eval_dirs, str | os.PathLike) else list(eval_dirs)
    if not eval_dirs:
        raise ValueError("a session report needs at least one evaluation folder; got none")
    ds = load_dataset(dataset_path)
    results = [load_eval(d) for d in eval_dirs]
    by_method = _group_by_method(results)
    metrics, n_head = _metric_keys(results)
    keys = key_metrics(results)
    rep_key = (
        keys[1][1]
        if len(keys) > 1 and keys[1][0].startswith("test log")
        else (keys[0][1] if keys else None)
    )
    tables = _metrics_tables(by_method, metrics)
    overview = [
        _fig(
            "Example trials",
            plotting.plot_rasters,
            ds,
            caption="Binned activity of example test trials (the first trial of each condition, then the next ones).",
        ),
        _fig(
            "Mean rates",
            plotting.plot_mean_rates,
            ds,
            caption="Mean over all trials and bins, per unit.",
        ),
        _fig(
            "Condition-averaged PSTHs",
            plotting.plot_psths,
            ds,
            caption="Population mean and the highest-rate units, per condition.",
        ),
    ]
    summary_figs = []
    if keys:
        import pandas as pd

        long = pd.DataFrame(
            [{"session": session, "method": r.method, "seed": r.seed, **r.values} for r in results]
        )
        summary_figs.append(
            _fig("Key metrics by method", plotting.plot_metric_comparison, long, keys)
        )
        if REFERENCE_METHOD in by_method and len(by_method) > 1:
            summary_figs.append(
                _fig(
                    "Paired against DisRNN",
                    plotting.plot_paired_differences,
                    long,
                    keys,
                    caption="Each method minus DisRNN on the same seed.",
                )
            )
    return {
        "title": f"Session {session}",
        "session": session,
        "description": _plain(ds.attrs.get("session_description", "")),
        "dataset_path": str(dataset_path),
        "prov": _provenance(ds),
        "overview": overview,
        "tables": tables,
        "head_keys": {k for _, k in metrics[:n_head]},
        "summary_figs": summary_figs,
        "sections": [_method_section(m, runs, ds, rep_key) for m, runs in by_method.items()],
        "reference": REFERENCE_METHOD,
        "n_evals": len(results),
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def render_session_report(
    session: str,
    dataset_path: str | os.PathLike,
    eval_dirs,
    out: str | os.PathLike,
) -> Path:
    """Write one session's report as a self-contained HTML file.

    Args:
        session: session id shown in the report.
        dataset_path: the session's binned dataset (.nc, ``disrnn bin``).
        eval_dirs: evaluation folders of this session (every method and seed).
        out: the HTML file to write (atomically).

    Returns:
        ``out`` as a Path.

    Raises:
        FileNotFoundError: the dataset or an evaluation folder's ``metrics.json`` is missing.
        ValueError: ``eval_dirs`` is empty.
    """
    ctx = _session_context(session, dataset_path, eval_dirs)
    return _write(out, _env().get_template("session.html").render(**ctx))


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "+-" else "_" for c in text.lower()).strip("_")


def export_session_figures(
    session: str, dataset_path: str | os.PathLike, eval_dirs, out_dir: str | os.PathLike
) -> list[Path]:
    """Write the session report's figures as PNG files (e.g. for ``snakemake --report``).

    Layout: ``out_dir/overview/<figure>.png``, ``out_dir/comparison/<figure>.png`` and
    ``out_dir/<method>/<figure>.png`` (the method's representative seed), written as one
    folder atomically. Figures that do not apply (an MLP variant's connectivity) are absent.

    Returns:
        The written files, in report order.
    """
    ctx = _session_context(session, dataset_path, eval_dirs)
    groups = [("overview", ctx["overview"]), ("comparison", ctx["summary_figs"])]
    groups += [(s["method"], s["figures"]) for s in ctx["sections"]]
    out_dir = Path(out_dir)
    rel = []
    with atomic_dir(out_dir) as tmp:
        for folder, figs in groups:
            for f in figs:
                if f["src"]:
                    path = Path(_slug(folder)) / f"{_slug(f['title'])}.png"
                    (tmp / path).parent.mkdir(parents=True, exist_ok=True)
                    (tmp / path).write_bytes(base64.b64decode(f["src"].split(",", 1)[1]))
                    rel.append(path)
    return [out_dir / p for p in rel]


# ------------------------------------------------------------------------ summary report
def render_summary_report(eval_dirs, out: str | os.PathLike) -> Path:
    """Write ``index.html``: every session x method on the key metrics, with links to
    each session's report (``<session>.html`` beside ``out``).

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
    keys = key_metrics(results)
    sessions = list(dict.fromkeys(r.session for r in results))
    methods = _method_order({r.method for r in results})
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
                    "seeds": ", ".join(
                        str(r.seed) for r in sorted(runs, key=lambda r: r.seed or 0)
                    ),
                    "cells": [_stat_cell([r.values.get(k) for r in runs]) for _, k in keys],
                }
            )
    long = pd.DataFrame(
        [{"session": r.session, "method": r.method, "seed": r.seed, **r.values} for r in results]
    )
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
    links = [{"session": s, "href": urllib.parse.quote(f"{s}.html")} for s in sessions]
    html = (
        _env()
        .get_template("summary.html")
        .render(
            title="DisRNN results: summary",
            keys=keys,
            rows=rows,
            links=links,
            figures=figs,
            n_evals=len(results),
            reference=REFERENCE_METHOD,
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        )
    )
    return _write(out, html)


def _write(out, html: str) -> Path:
    out = Path(out)
    with atomic_file(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out
