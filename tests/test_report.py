"""Session and summary reports: content, escaping, and no request to another host.

Two kinds of input:

- FIXTURE evaluation folders written here by hand to the contract of docs/design.md
  ("The fit folder and evaluation folder"), with known numbers, so the tables can be
  checked exactly; its NWB-derived text carries ``<script>`` to check escaping.
- Real folders made by the pipeline's Python API on a tiny simulated session
  (``disrnn.simulate`` -> ``bin_session`` -> ``fit`` -> ``evaluate``), few epochs.
"""

from __future__ import annotations

import html as htmllib
import json
import re

import numpy as np
import pytest
import xarray as xr
from helpers.reports import (
    EVIL,
    FAKE_METHODS,
    FAKE_SEEDS,
    REAL_METHODS,
    fake_dataset,
    fake_metric_values,
    shared_real_results,
    table_cells,
    write_fake_eval,
)

from disrnn.data.io import save_dataset
from disrnn.report import load_eval, render_session_report, render_summary_report


@pytest.fixture(scope="module")
def fake_results(tmp_path_factory):
    """FIXTURE: two sessions x 3 methods x 2 seeds of contract-following folders."""
    root = tmp_path_factory.mktemp("fake") / "results"
    out = {}
    for i, session in enumerate(("fake_a", "fake_b")):
        ds = fake_dataset(np.random.default_rng(i))
        dpath = save_dataset(ds, root / session / "dataset.nc")
        evals = [write_fake_eval(root, session, m, s, ds) for m in FAKE_METHODS for s in FAKE_SEEDS]
        out[session] = (dpath, evals)
    reports = root / "reports"
    dpath, evals = out["fake_a"]
    render_session_report("fake_a", dpath, evals, reports / "fake_a.html")
    all_evals = [e for _, evals in out.values() for e in evals]
    render_summary_report(all_evals, reports / "index.html")
    return {"root": root, "sessions": out, "reports": reports}


# ------------------------------------------------------------------------------ helpers
def external_refs(text: str) -> list[str]:
    """src/href/url() values that point at another host."""
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", text, flags=re.I)
    refs += re.findall(r"""url\(\s*["']?([^)"']*)""", text, flags=re.I)
    refs += re.findall(r"""@import\s+["']([^"']*)""", text, flags=re.I)
    return [r for r in refs if re.match(r"^\s*(https?:)?//", r, flags=re.I)]


# -------------------------------------------------------------------------------- tests
def test_session_report_metrics_table_matches_metrics_json(fake_results):
    dpath, evals = fake_results["sessions"]["fake_a"]
    text = (fake_results["reports"] / "fake_a.html").read_text()
    # every seed's number from metrics.json sits in the per-seed table
    seed_cells = table_cells(text, "seed-table")
    checked = 0
    for ev in evals:
        r = load_eval(ev)
        for key, value in r.values.items():
            if value is None:
                continue
            hit = [
                c
                for c in seed_cells
                if c["row-data-key"] == key
                and c["data-method"] == r.method
                and c["data-seed"] == str(r.seed)
            ]
            assert len(hit) == 1, (key, r.method, r.seed)
            assert float(hit[0]["data-value"]) == value
            assert hit[0]["text"] == f"{value:.4g}"
            checked += 1
    assert checked == len(evals) * 7
    # mean +- sd over seeds per method
    cells = table_cells(text, "metrics-table")
    for method in FAKE_METHODS:
        vals = [fake_metric_values(method, s)["co_bps"] for s in FAKE_SEEDS]
        (c,) = [c for c in cells if c["row-data-key"] == "co_bps" and c["data-method"] == method]
        assert float(c["data-mean"]) == pytest.approx(np.mean(vals))
        assert float(c["data-sd"]) == pytest.approx(np.std(vals, ddof=1))
        assert c["text"] == f"{np.mean(vals):.4g} ± {np.std(vals, ddof=1):.2g}"
    # paired against DisRNN: per-seed differences
    paired = table_cells(text, "paired-table")
    for method in ("lrRNN", "bdRNN"):
        d = [
            fake_metric_values(method, s)["pc"] - fake_metric_values("DisRNN", s)["pc"]
            for s in FAKE_SEEDS
        ]
        (c,) = [c for c in paired if c["row-data-key"] == "pc" and c["data-method"] == method]
        assert float(c["data-mean"]) == pytest.approx(np.mean(d))
        assert c["data-n"] == "2"
    assert not [c for c in paired if c["data-method"] == "DisRNN"]
    # a metric that is null everywhere gets no row
    assert 'data-key="not_applicable"' not in text


def test_session_report_sections_and_provenance(fake_results):
    text = (fake_results["reports"] / "fake_a.html").read_text()
    for method in FAKE_METHODS:
        assert f"<h2>{method}</h2>" in text
    for needle in (
        "000999",
        "0.230101.0000",
        "ab" * 32,
        "min_rate",
        "trials/start_time",
        "7, twin of 3",
    ):
        assert needle in text
    # split sizes: 24 trials, every 4th is val/test
    splits = dict(
        re.findall(r"<tr><td>(train|val|test)</td><td class=\"num\">(\d+)</td></tr>", text)
    )
    assert splits == {"train": "12", "val": "6", "test": "6"}
    # every figure drew: no error notes, and 3 overview + 2 comparison + 6 per method
    assert "could not be drawn" not in text
    n_img = len(re.findall(r'<img src="data:image/png;base64,', text))
    assert n_img == 3 + 2 + 6 * len(FAKE_METHODS)
    # figures of one representative seed per method (the median test LL, lower on ties)
    assert text.count("Figures of seed 0 ") == len(FAKE_METHODS)


def test_nwb_text_is_escaped(fake_results):
    for name in ("fake_a.html", "index.html"):
        text = (fake_results["reports"] / name).read_text()
        assert "<script" not in text.lower(), name
    text = (fake_results["reports"] / "fake_a.html").read_text()
    assert htmllib.escape(f"fake session {EVIL}", quote=False) in text.replace("&#39;", "'")
    assert "&lt;script&gt;" in text  # condition label and area are shown, escaped


def test_reports_refer_to_no_other_host(fake_results):
    for path in fake_results["reports"].glob("*.html"):
        text = path.read_text()
        assert external_refs(text) == [], path.name
        assert "http://" not in text and "https://" not in text, path.name


def test_summary_report_table_and_links(fake_results):
    text = (fake_results["reports"] / "index.html").read_text()
    assert re.findall(r'<li><a href="([^"]+)">', text) == ["fake_a.html", "fake_b.html"]
    assert "2 sessions, " in text
    cells = table_cells(text, "summary-table")
    for session in ("fake_a", "fake_b"):
        for method in FAKE_METHODS:
            for key in (
                "co_bps",
                "test_ll_per_bin_neuron",
                "pc",
                "group_latent_r2",
                "behavior_r2.behavior.all",
            ):
                (c,) = [
                    c
                    for c in cells
                    if c["row-data-session"] == session
                    and c["row-data-method"] == method
                    and c.get("data-key") == key
                ]
                vals = []
                for s in FAKE_SEEDS:
                    f = fake_metric_values(method, s)
                    vals.append(
                        f["behavior_r2"]["behavior"]["all"]
                        if key.startswith("behavior")
                        else f[key]
                    )
                assert float(c["data-mean"]) == pytest.approx(np.mean(vals)), (session, method, key)
    assert len(re.findall(r'<img src="data:image/png;base64,', text)) == 2


def test_report_rejects_missing_inputs(tmp_path, fake_results):
    dpath, evals = fake_results["sessions"]["fake_a"]
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        render_session_report("x", dpath, [tmp_path], tmp_path / "x.html")
    with pytest.raises(ValueError, match="at least one"):
        render_summary_report([], tmp_path / "index.html")
    assert not (tmp_path / "x.html").exists()


def test_cli_writes_reports(tmp_path, fake_results):
    from disrnn.cli import main

    dpath, evals = fake_results["sessions"]["fake_b"]
    evals = [e for e in evals if e.parent.name == "DisRNN"]
    out = tmp_path / "r" / "fake_b.html"
    rc = main(
        [
            "report",
            "session",
            "--dataset",
            str(dpath),
            "--evals",
            *map(str, evals),
            "--session",
            "fake_b",
            "--out",
            str(out),
        ]
    )
    assert rc == 0 and "DisRNN" in out.read_text()
    rc = main(
        [
            "report",
            "summary",
            "--evals",
            *map(str, evals),
            "--out",
            str(tmp_path / "r" / "index.html"),
        ]
    )
    assert rc == 0 and 'href="fake_b.html"' in (tmp_path / "r" / "index.html").read_text()


# --------------------------------------------------------------- the real pipeline pieces


@pytest.fixture(scope="module")
def real_results(tmp_path_factory):
    res = shared_real_results(tmp_path_factory)
    root = res["root"]
    reports = root / "reports"
    render_session_report(
        res["session"], res["dataset"], res["evals"], reports / f"{res['session']}.html"
    )
    render_summary_report(res["evals"], reports / "index.html")
    res["reports"] = reports
    return res


def test_real_pipeline_report(real_results):
    text = (real_results["reports"] / f"{real_results['session']}.html").read_text()
    for method in REAL_METHODS:
        assert f"<h2>{method}</h2>" in text
    seed_cells = table_cells(text, "seed-table")
    n = 0
    for ev in real_results["evals"]:
        r = load_eval(ev)
        for key, value in r.values.items():
            if value is None:
                continue
            hit = [
                c for c in seed_cells if c["row-data-key"] == key and c["data-method"] == r.method
            ]
            assert len(hit) == 1 and float(hit[0]["data-value"]) == value, (key, r.method)
            n += 1
    assert n > 10
    assert "could not be drawn" not in text
    # every metric the pipeline writes has a glossary entry (meaning and direction)
    from disrnn.report.glossary import direction

    keys = {k for ev in real_results["evals"] for k in load_eval(ev).values}
    assert not sorted(k for k in keys if direction(k) is None)
    # DisRNN (3 + 3) has a unit map; the one-group methods say why they have none
    assert 'id="m-DisRNN-unit-table"' in text and "Unit map" in text
    assert text.count("One latent group: every unit") == len(REAL_METHODS) - 1
    assert external_refs(text) == []
    summary = (real_results["reports"] / "index.html").read_text()
    assert f'href="{real_results["session"]}.html"' in summary
    for method in REAL_METHODS:
        assert f'data-method="{method}"' in summary


def test_mlp_variant_without_connectivity(tmp_path):
    """An MLP variant's evaluation saves an empty connectivity.nc: a note, not a figure."""
    ds = fake_dataset(np.random.default_rng(3))
    dpath = save_dataset(ds, tmp_path / "results" / "s" / "dataset.nc")
    ev = write_fake_eval(tmp_path / "results", "s", "DisRNN-MLP", 0, ds)
    reason = "MLP encoder or decoder: no W, J"
    xr.Dataset(attrs={"available": 0, "reason": reason}).to_netcdf(
        ev / "connectivity.nc", engine="h5netcdf"
    )
    text = render_session_report("s", dpath, [ev], tmp_path / "s.html").read_text()
    assert f"No connectivity: {reason}" in text
    assert "could not be drawn" not in text
    # 3 overview, the key-metric comparison, and 4 per method (no connectivity, eigenvalues)
    assert len(re.findall(r'<img src="data:image/png;base64,', text)) == 3 + 1 + 4


def test_minimal_continuous_dataset(tmp_path):
    """A continuous dataset without conditions, held-out units, areas or provenance
    beyond the bin width still gives a complete report (every figure drawn)."""
    ds = fake_dataset(np.random.default_rng(4))
    ds = ds.drop_vars(["condition", "heldout", "area", "true_latents", "latent_group"])
    ds["activity"] = ds["activity"].astype("float32") + 0.5
    ds["activity"].attrs["kind"] = "continuous"
    ds["mask"] = (("trial", "time"), np.ones((ds.sizes["trial"], ds.sizes["time"]), bool))
    ds["mask"][0, :3] = False
    ds.attrs = {"bin_width": 0.02, "kind": "continuous"}
    dpath = save_dataset(ds, tmp_path / "results" / "c" / "dataset.nc")
    ev = write_fake_eval(tmp_path / "results", "c", "DisRNN", 0, ds)
    text = render_session_report("c", dpath, [ev], tmp_path / "c.html").read_text()
    assert "could not be drawn" not in text
    from disrnn import plotting

    assert plotting.plot_mean_rates(ds).axes[0].get_ylabel() == "mean activity"
    assert len(re.findall(r'<img src="data:image/png;base64,', text)) == 3 + 1 + 6


def test_connectivity_scales_unit_and_latent_matrices_apart(fake_results):
    """W and every W_g share one colour scale, J has its own (J's weights are typically
    far larger, and on its scale W looks blank); unit axes carry the NWB unit ids."""
    from disrnn import plotting

    ev = fake_results["sessions"]["fake_a"][1][0]
    conn = load_eval(ev).connectivity
    conn = conn.assign(J=conn["J"] * 100.0)  # J far larger than W, as on real data
    fig = plotting.plot_connectivity(conn)
    images = {ax.get_title(): ax.get_images()[0] for ax in fig.axes if ax.get_images()}
    assert len(images) == 2 + conn.sizes["group"]  # W, J and each W_g
    v_unit = max(float(np.abs(conn[v]).max()) for v in ("W", "W_g"))
    v_latent = float(np.abs(conn["J"]).max())
    assert images.pop("J").get_clim() == (-v_latent, v_latent)
    assert {im.get_clim() for im in images.values()} == {(-v_unit, v_unit)}
    w_ax = next(ax for ax in fig.axes if ax.get_title() == "W")
    labels = {t.get_text() for t in w_ax.get_xticklabels()}
    assert labels and labels <= {str(u) for u in conn["post"].values}
    assert "100" in labels  # the fixture's first unit id, not position 0


def test_flatten_metrics_and_representative_seed(tmp_path):
    from disrnn.report.results import flatten_metrics, representative

    flat = flatten_metrics(
        {"a": 1, "b": {"c": 2.5, "d": None, "e": float("nan")}, "s": "x", "f": True, "l": [1, 2]}
    )
    assert flat == {"a": 1.0, "b.c": 2.5, "b.d": None, "b.e": None, "l.0": 1.0, "l.1": 2.0}
    ds = fake_dataset(np.random.default_rng(5))
    runs = []
    for seed, ll in zip((0, 1, 2), (-1.0, -3.0, -2.0), strict=True):
        ev = write_fake_eval(tmp_path, "s", "DisRNN", seed, ds)
        m = json.loads((ev / "metrics.json").read_text())
        m["test_ll_per_bin_neuron"] = ll
        (ev / "metrics.json").write_text(json.dumps(m))
        runs.append(load_eval(ev))
    assert representative(runs, "test_ll_per_bin_neuron").seed == 2  # the median
    assert representative(runs, "missing").seed == 0
    m["session"] = "other"
    (ev / "metrics.json").write_text(json.dumps(m))
    assert load_eval(ev).session == "other"
    # the session is the one metrics.json records, not guessed from folder names
    assert {r.session for r in runs} == {"s"} and runs[
        0
    ].fit_dir == tmp_path / "s" / "fits" / "DisRNN" / "seed0"


def test_export_session_figures_for_snakemake_report(tmp_path, fake_results):
    from disrnn.report import export_session_figures

    dpath, evals = fake_results["sessions"]["fake_b"]
    evals = [e for e in evals if e.parent.name in ("DisRNN", "lrRNN")]
    files = export_session_figures("fake_b", dpath, evals, tmp_path / "figs")
    names = {p.relative_to(tmp_path / "figs").as_posix() for p in files}
    assert {"overview/example_trials.png", "comparison/paired_against_disrnn.png"} <= names
    for method in ("disrnn", "lrrnn"):
        assert {f"{method}/connectivity.png", f"{method}/loss_curves.png"} <= names
    assert len(files) == 3 + 2 + 2 * 6
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in files)


def test_smoothing_reference_predictions_against_its_heldout_units(tmp_path):
    """The smoothing reference predicts the held-out units only: its "Predicted against
    observed" figure draws those predictions against the same units' observed PSTHs."""
    from disrnn import plotting
    from disrnn.evaluation.references import smoothing_reference, write_reference

    ds = fake_dataset(np.random.default_rng(8))
    dpath = save_dataset(ds, tmp_path / "results" / "s" / "dataset.nc")
    ref = tmp_path / "results" / "s" / "evals" / "smoothing" / "seed0"
    write_reference(smoothing_reference(ds, kernel_sds=(0.04,), alphas=(1e-2,), n_folds=2), ref)
    ev = write_fake_eval(tmp_path / "results", "s", "DisRNN", 0, ds)
    text = render_session_report("s", dpath, [ev, ref], tmp_path / "s.html").read_text()
    assert "could not be drawn" not in text and "operands could not be broadcast" not in text

    pred = load_eval(ref).predicted
    held = ds["heldout"].values
    assert pred.sizes["unit"] == held.sum() < ds.sizes["unit"]
    fig = plotting.plot_predicted_vs_observed(ds, pred)
    (points,) = fig.axes[0].collections  # the held-out units only: one scatter
    # independent truth: per-condition means over the test trials, in Hz, of the held-out
    # units' counts and of the saved rates, in (condition, time, unit) order
    test = ds["split"].values == "test"
    conds = list(dict.fromkeys(ds["condition"].values[test].tolist()))
    bw = ds.attrs["bin_width"]
    counts = ds["activity"].values[test][..., held] / bw
    rates = pred.sel(trial=ds["trial"].values[test]).values / bw
    labels = ds["condition"].values[test]
    want_x = np.stack([counts[labels == c].mean(0) for c in conds]).ravel()
    want_y = np.stack([rates[labels == c].mean(0) for c in conds]).ravel()
    np.testing.assert_allclose(points.get_offsets()[:, 0], want_x)
    np.testing.assert_allclose(points.get_offsets()[:, 1], want_y)
    # without unit ids the units cannot be matched: refused, naming the fix
    with pytest.raises(ValueError, match="unit coord"):
        plotting.plot_predicted_vs_observed(ds, pred.drop_vars(["unit", "heldout"]))
