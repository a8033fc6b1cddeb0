"""Self-contained HTML reports: one per session and a summary over sessions.

Figures come from :mod:`disrnn.plotting` and are embedded as base64 PNG, styles are
inline, and no page refers to another host, so a report opens offline from a file.
Templates are Jinja2 with autoescaping on: every string from an NWB file (session
description, condition labels, unit areas, file paths) is escaped.
"""

from __future__ import annotations

import base64
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from disrnn import plotting
from disrnn._atomic import atomic_dir
from disrnn.report.glossary import glossary
from disrnn.report.provenance import _provenance
from disrnn.report.render import (
    _env,
    _fig,
    _note,
    _plain,
    _write,
    figure_to_data_uri,
    figure_to_png,
    fmt,
)
from disrnn.report.results import (
    REFERENCE_METHOD,
    EvalResult,
    check_comparable,
    key_metrics,
    load_eval,
    representative,
)
from disrnn.report.selection import selection_section
from disrnn.report.summary_box import summary_box
from disrnn.report.tables import (
    _group_by_method,
    _metric_keys,
    _metrics_tables,
    reference_cautions,
)
from disrnn.report.units import unit_section

__all__ = [
    "export_session_figures",
    "figure_to_data_uri",
    "figure_to_png",
    "fmt",
    "render_session_report",
]

log = logging.getLogger(__name__)

#: what the unit circle of the eigenvalue plot means for this discrete-time model
EIGEN_CAPTION = (
    "Eigenvalues of J = BA and of each group's diagonal block; dotted: the unit circle. "
    "The model steps in discrete time, one bin at a time: z_t = B h_t + b with "
    "h_t = Σ_l ψ_l tanh(x_{t-l}) and x_t = f(A z_t + a), so near a state the latents "
    "map from one bin to the next by J scaled by the slopes of tanh and of the link f "
    "(and by the kernel ψ). The unit circle is where such a linear step neither grows "
    "nor decays (|λ| = 1): inside, a mode decays from bin to bin; outside, it would grow "
    "if those slopes were 1. Because tanh and f flatten for large inputs (and spike counts "
    "enter tanh unscaled), |λ| well above 1 (e.g. about 5) is not by itself unstable "
    "dynamics: the free-running rollout below shows whether activity stays bounded."
)


# ------------------------------------------------------------------------ session report
def _predicted(r: EvalResult, ds):
    """Predicted rates saved by the evaluation, else recomputed from the saved fit, and
    a note for the caption."""
    pred = r.predicted
    if pred is not None and pred.sizes["unit"] < ds.sizes["unit"]:
        n = pred.sizes["unit"]
        return pred, f"Only the {n} units this run predicts (a reference's held-out units)."
    if pred is not None or r.fit_dir is None or not (r.fit_dir / "weights.pt").exists():
        return pred, ""
    try:
        from disrnn.fit import load_fit

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
    return _finish_section(method, runs, r, rep_key, figs) | {"units": unit_section(runs, r)}


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
            caption="W = AB (unit × unit, axes labelled by NWB unit id) and each group's W_g = A[:, g] B[g, :] share one colour scale; J = BA (latent × latent; group blocks outlined) has its own; with a ground truth, the true W and true W_g (under the fitted group matched to each) below, on the unit × unit scale.",
        ),
        _fig(
            "Eigenvalues",
            plotting.plot_eigenvalues,
            conn,
            caption=EIGEN_CAPTION,
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


def _units_agreement(sections: list[dict]) -> dict | None:
    """DisRNN's agreement of unit assignments across seeds, from its unit-map section."""
    s = next((s for s in sections if s["method"] == REFERENCE_METHOD), None)
    return None if s is None else s["units"].get("agreement_data")


def _session_context(session: str, dataset_path, eval_dirs, selection=None) -> dict:
    """Everything the session template shows (figures drawn, tables computed)."""
    from disrnn.data.io import load_dataset

    eval_dirs = [eval_dirs] if isinstance(eval_dirs, str | os.PathLike) else list(eval_dirs)
    if not eval_dirs:
        raise ValueError("a session report needs at least one evaluation folder; got none")
    from disrnn.fit.tensors import activity_sha256

    ds = load_dataset(dataset_path)
    results = [load_eval(d) for d in eval_dirs]
    check_comparable(results, activity_sha256(ds), by_session=False)
    by_method = _group_by_method(results)
    metrics, n_head = _metric_keys(results)
    keys = key_metrics(results)
    rep_key = (
        keys[1][1]
        if len(keys) > 1 and keys[1][0].startswith("test log")
        else (keys[0][1] if keys else None)
    )
    tables = _metrics_tables(by_method, metrics)
    sections = [_method_section(m, runs, ds, rep_key) for m, runs in by_method.items()]
    overview = _overview_figs(ds)
    summary_figs = _comparison_figs(session, results, by_method, keys)
    modules = selection_section(selection)
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
        "sections": sections,
        "box": summary_box(
            by_method, _units_agreement(sections), modules.get("sentence"), modules.get("groups")
        ),
        "modules": modules,
        "glossary": glossary([row["key"] for row in tables["rows"]]),
        "one_seed": all(len(runs) == 1 for runs in by_method.values()),
        "reference": REFERENCE_METHOD,
        "cautions": reference_cautions(results),
        "n_evals": len(results),
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _overview_figs(ds) -> list[dict]:
    """The session's data before any fit: example trials, mean rates, PSTHs."""
    return [
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


def _comparison_figs(session: str, results, by_method: dict, keys) -> list[dict]:
    """The key metrics by method and (with DisRNN and another method) paired against
    DisRNN; none without key metrics."""
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
    return summary_figs


def render_session_report(
    session: str,
    dataset_path: str | os.PathLike,
    eval_dirs,
    out: str | os.PathLike,
    selection: str | os.PathLike | None = None,
    figures_dir: str | os.PathLike | None = None,
) -> Path:
    """Write one session's report as a self-contained HTML file.

    Args:
        session: session id shown in the report.
        dataset_path: the session's binned dataset (.nc, ``disrnn bin``).
        eval_dirs: evaluation folders of this session (every method and seed).
        out: the HTML file to write (atomically).
        selection: the session's selection folder (``disrnn select``), shown as "How many
            modules?"; None: the section says that no selection was run.
        figures_dir: also write the report's figures there as PNG files, laid out as by
            :func:`export_session_figures` (the figures are drawn once for both).

    Returns:
        ``out`` as a Path.

    Raises:
        FileNotFoundError: the dataset or an evaluation folder's ``metrics.json`` is missing.
        ValueError: ``eval_dirs`` is empty.
    """
    ctx = _session_context(session, dataset_path, eval_dirs, selection)
    if figures_dir is not None:
        _write_figures(ctx, figures_dir)
    return _write(out, _env().get_template("session.html").render(**ctx))


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "+-" else "_" for c in text.lower()).strip("_")


def export_session_figures(
    session: str,
    dataset_path: str | os.PathLike,
    eval_dirs,
    out_dir: str | os.PathLike,
    selection: str | os.PathLike | None = None,
) -> list[Path]:
    """Write the session report's figures as PNG files (e.g. for ``snakemake --report``).

    Layout: ``out_dir/overview/<figure>.png``, ``out_dir/comparison/<figure>.png`` and
    ``out_dir/<method>/<figure>.png`` (the method's representative seed), written as one
    folder atomically. Figures that do not apply (an MLP variant's connectivity) are absent.

    Returns:
        The written files, in report order.
    """
    return _write_figures(_session_context(session, dataset_path, eval_dirs, selection), out_dir)


def _write_figures(ctx: dict, out_dir: str | os.PathLike) -> list[Path]:
    """The figures of a session report's context as PNG files below ``out_dir``."""
    groups = [("overview", ctx["overview"]), ("comparison", ctx["summary_figs"])]
    groups += [("selection", ctx["modules"].get("figures", []))]
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
