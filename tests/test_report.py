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
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from disrnn.data.io import clean_attrs, save_dataset
from disrnn.report import load_eval, render_session_report, render_summary_report

EVIL = "<script>alert('x')</script>"
FAKE_METHODS = ("DisRNN", "lrRNN", "bdRNN")
FAKE_SEEDS = (0, 1)


# ---------------------------------------------------------------------- contract fixture
def fake_dataset(rng: np.random.Generator, n_trials=24, n_time=20, n_units=12) -> xr.Dataset:
    """A FIXTURE dataset following "The dataset" contract (not from the pipeline)."""
    conds = np.array(["left", "right", f"odd {EVIL}"])[np.arange(n_trials) % 3]
    split = np.array(["train", "train", "val", "test"])[np.arange(n_trials) % 4]
    t = (np.arange(n_time) + 0.5) * 0.02 - 0.1
    counts = rng.poisson(2.0, size=(n_trials, n_time, n_units)).astype("int32")
    ds = xr.Dataset(
        {
            "activity": (("trial", "time", "unit"), counts, {"kind": "spike_counts"}),
            "true_latents": (("trial", "time", "latent"), rng.normal(size=(n_trials, n_time, 4))),
        },
        coords={
            "trial": np.arange(n_trials),
            "time": t,
            "unit": np.arange(100, 100 + n_units),
            "split": ("trial", split),
            "condition": ("trial", conds),
            "area": ("unit", np.array(["M1", f"PMd{EVIL}"])[np.arange(n_units) % 2]),
            "heldout": ("unit", np.arange(n_units) >= n_units - 3),
            "latent_group": ("latent", np.array([0, 0, 1, 1])),
        },
        attrs=clean_attrs(
            {
                "source": "dandi",
                "dandiset": "000999",
                "dandiset_version": "0.230101.0000",
                "asset_path": f"sub-X/sub-X_ses-{EVIL}.nwb",
                "nwb_path": "resources/fake.nwb",
                "sha256": "ab" * 32,
                "bin_width": 0.02,
                "alignment": "trials/start_time",
                "window_start": -0.1,
                "window_end": 0.3,
                "filters": {"min_rate": {"value": 1.0, "removed": 2}},
                "dropped_trials": {"nan_alignment": 1},
                "kind": "spike_counts",
                "session_description": f"fake session {EVIL}",
            }
        ),
    )
    return ds


def fake_metric_values(method: str, seed: int) -> dict:
    base = {"DisRNN": 0.3, "lrRNN": 0.2, "bdRNN": 0.25}.get(method, 0.1)
    return {
        "co_bps": round(base + 0.01 * seed, 6),
        "test_ll_per_bin_neuron": round(-1.5 + base + 0.003 * seed, 6),
        "bits_per_spike": round(base * 2 + 0.001 * seed, 6),
        "pc": round(1.0 - 2 * base + 0.02 * seed, 6),
        "group_latent_r2": round(0.5 + base + 0.005 * seed, 6),
        "behavior_r2": {"behavior": {"all": round(0.4 + base, 6), "group0": 0.1}},
        "not_applicable": None,
    }


def write_fake_eval(root: Path, session: str, method: str, seed: int, ds: xr.Dataset) -> Path:
    """FIXTURE fit + evaluation folders at the workflow's paths, to the contract."""
    rng = np.random.default_rng(seed + 17 * len(method))
    fit = root / session / "fits" / method / f"seed{seed}"
    ev = root / session / "evals" / method / f"seed{seed}"
    fit.mkdir(parents=True)
    ev.mkdir(parents=True)
    groups = (2, 2) if method != "lrRNN" else (4,)
    (fit / "config.json").write_text(
        json.dumps({"method": method, "groups": groups, "beta": 2.0, "seed": seed})
    )
    rows = ["epoch,split,lr,total,nll,kl,pc,bd"]
    for e in range(15):
        for split in ("train", "val"):
            v = 10 * np.exp(-e / 5) + (0.3 if split == "val" else 0)
            rows.append(f"{e},{split},0.001,{v + 1},{v},{0.5},{0.1},{0.0}")
    (fit / "losses.csv").write_text("\n".join(rows) + "\n")
    (fit / "fit_info.json").write_text(
        json.dumps({"seconds": 1.5, "epochs": 15, "best_epoch": 14, "stop_reason": "max_epochs"})
    )

    metrics = {
        "method": method,
        "seed": seed,
        "session": session,
        **fake_metric_values(method, seed),
    }
    (ev / "metrics.json").write_text(json.dumps(metrics))
    n_tr, n_t, n_u = ds.sizes["trial"], ds.sizes["time"], ds.sizes["unit"]
    lg = np.concatenate([[g] * h for g, h in enumerate(groups)])
    z = rng.normal(size=(n_tr, n_t, 4))
    z[:, 0] = np.nan
    rates = rng.gamma(4.0, 0.5, size=(n_tr, n_t, n_u))
    rates[:, 0] = np.nan
    xr.Dataset(
        {"latents": (("trial", "time", "latent"), z), "rates": (("trial", "time", "unit"), rates)},
        coords={
            "trial": ds["trial"].values,
            "time": ds["time"].values,
            "latent": np.arange(4),
            "latent_group": ("latent", lg),
            "split": ("trial", ds["split"].values),
        },
    ).to_netcdf(ev / "latents.nc", engine="h5netcdf")
    A = rng.normal(size=(n_u, 4))
    B = rng.normal(size=(4, n_u)) * 0.3
    J = B @ A
    ev_j = np.linalg.eigvals(J)
    blocks = [np.linalg.eigvals(J[np.ix_(lg == g, lg == g)]) for g in range(len(groups))]
    bev = np.concatenate(blocks)
    xr.Dataset(
        {
            "W": (("post", "pre"), A @ B),
            "J": (("latent", "latent_in"), J),
            "W_g": (
                ("group", "post", "pre"),
                np.stack([A[:, lg == g] @ B[lg == g] for g in range(len(groups))]),
            ),
            "J_eig_real": ("eig", ev_j.real),
            "J_eig_imag": ("eig", ev_j.imag),
            "block_eig_real": ("block_eig", bev.real),
            "block_eig_imag": ("block_eig", bev.imag),
        },
        coords={
            "latent_group": ("latent", lg),
            "group": np.arange(len(groups)),
            "block_eig_group": (
                "block_eig",
                np.concatenate([[g] * b.size for g, b in enumerate(blocks)]),
            ),
        },
    ).to_netcdf(ev / "connectivity.nc", engine="h5netcdf")
    roll = rng.poisson(2.0, size=(n_tr, n_t, n_u)).astype(float)
    roll[:, :2] = np.nan
    xr.Dataset(
        {"rollout": (("trial", "time", "unit"), roll)},
        coords={"trial": ds["trial"].values, "time": ds["time"].values, "unit": ds["unit"].values},
    ).to_netcdf(ev / "rollout.nc", engine="h5netcdf")
    return ev


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


def table_cells(text: str, table_id: str) -> list[dict]:
    """(attrs dict, inner text) of every <td> of the table with ``id=table_id``."""
    m = re.search(rf'<table id="{table_id}".*?</table>', text, flags=re.S)
    assert m, f"no table {table_id!r} in the report"
    cells = []
    for tr in re.finditer(r"<tr([^>]*)>(.*?)</tr>", m.group(0), flags=re.S):
        row_attrs = dict(re.findall(r'(data-[\w-]+)="([^"]*)"', tr.group(1)))
        for td in re.finditer(r"<td([^>]*)>(.*?)</td>", tr.group(2), flags=re.S):
            attrs = dict(re.findall(r'(data-[\w-]+)="([^"]*)"', td.group(1)))
            cells.append(
                {
                    **{f"row-{k}": v for k, v in row_attrs.items()},
                    **attrs,
                    "text": htmllib.unescape(td.group(2)),
                }
            )
    return cells


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
    for needle in ("000999", "0.230101.0000", "ab" * 32, "min_rate", "trials/start_time"):
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
REAL_METHODS = ("DisRNN", "lrRNN", "lrRNN+ICA")


def build_real_results(root: Path, methods=REAL_METHODS, seeds=(0,), epochs=3) -> dict:
    """Tiny real results folder from the pipeline's Python API, at the workflow's paths:
    ``{root}/{session}/dataset.nc``, ``fits/{method}/seed{s}``, ``evals/{method}/seed{s}``.

    simulate (NWB) -> bin_session -> fit (few epochs) -> evaluate. Skips the calling test
    when a piece of the pipeline is not importable.
    """
    pytest.importorskip("torch")
    try:
        from disrnn.evaluation import evaluate
        from disrnn.fit import fit
        from disrnn.fit.config import FitConfig
    except ImportError as err:
        pytest.skip(f"the pipeline is incomplete: {err}")
    session = "sim_tiny"
    dpath = save_dataset(_tiny_dataset(root.parent / "resources"), root / session / "dataset.nc")
    evals = []
    for method in methods:
        for seed in seeds:
            fdir = root / session / "fits" / method / f"seed{seed}"
            cfg = FitConfig.create(
                method, groups=(3, 3) if method in ("DisRNN", "bdRNN") else (6,), epochs=epochs
            )
            init = None
            if method in ("lrRNN+ICA", "LINT"):
                init = root / session / "fits" / "lrRNN" / f"seed{seed}"
            fit(dpath, cfg, fdir, seed=seed, device="cpu", init_from=init, progress=False)
            edir = root / session / "evals" / method / f"seed{seed}"
            evaluate(fdir, dpath, edir, session=session)
            evals.append(edir)
    return {"session": session, "dataset": dpath, "evals": evals, "root": root}


_SHARED: dict = {}


def shared_real_results(tmp_path_factory) -> dict:
    """One tiny real results folder per test session, shared by the report, browser and
    notebook tests (read-only for them; each renders into its own folder)."""
    if "real" not in _SHARED:
        _SHARED["real"] = build_real_results(tmp_path_factory.mktemp("real") / "results")
    return _SHARED["real"]


TINY = {"n_trials": 30, "n_units": 16, "trial_length": 30}


def _tiny_dataset(resources: Path) -> xr.Dataset:
    """A small simulated session (lorenz-thomas preset, Poisson spikes, behavior).

    Through the NWB file and ``bin_session`` when ``disrnn.simulate.simulate_nwb``
    exists; until then from ``disrnn.simulate.generate.simulate`` directly, laid out
    as "The dataset" contract (a stopgap of this test, not pipeline code).
    """
    import disrnn

    try:
        from disrnn.simulate import simulate_nwb
    except ImportError:
        simulate_nwb = None
    if simulate_nwb is not None:
        nwb = simulate_nwb("lorenz-thomas", resources / "sim_tiny.nwb", seed=0, **TINY)
        cfg = disrnn.BinConfig(bin_width=0.02, behavior=("behavior",), heldout_fraction=0.2)
        return disrnn.bin_session(nwb, cfg)
    from disrnn.simulate.generate import simulate

    sim = simulate("lorenz-thomas", seed=0, **TINY)
    n_trial, n_time, n_unit = sim.activity.shape
    split = np.array(["train", "train", "train", "val", "test"])[np.arange(n_trial) % 5]
    heldout = np.zeros(n_unit, bool)
    heldout[:: max(n_unit // 3, 1)] = True
    return xr.Dataset(
        {
            "activity": (("trial", "time", "unit"), sim.activity, {"kind": sim.kind}),
            "behavior": (("trial", "time", "behavior_dim"), sim.behavior, {"kind": "behavior"}),
            "true_latents": (("trial", "time", "latent"), sim.latents),
            "true_rates": (("trial", "time", "unit"), sim.rates),
            "true_A": (("unit", "latent"), sim.A),
            "true_B": (("latent", "unit"), sim.B),
            "true_bias": ("unit", sim.bias),
        },
        coords={
            "trial": np.arange(n_trial),
            "time": (np.arange(n_time) + 0.5) * sim.bin_width,
            "unit": np.arange(n_unit),
            "split": ("trial", split),
            "condition": ("trial", np.asarray(sim.condition).astype(str)),
            "area": ("unit", np.array(["simulated"] * n_unit)),
            "heldout": ("unit", heldout),
            "latent_group": ("latent", sim.latent_group),
        },
        attrs=clean_attrs(
            {
                "source": "simulated",
                "nwb_path": "",
                "sha256": "",
                "bin_width": sim.bin_width,
                "alignment": "trials/start_time",
                "window_start": 0.0,
                "window_end": n_time * sim.bin_width,
                "filters": {},
                "dropped_trials": {},
                "kind": sim.kind,
            }
        ),
    )


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


def test_connectivity_heatmaps_share_one_colour_scale(fake_results):
    from disrnn import plotting

    ev = fake_results["sessions"]["fake_a"][1][0]
    conn = load_eval(ev).connectivity
    fig = plotting.plot_connectivity(conn)
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 2 + conn.sizes["group"]  # W, J and each W_g
    vmax = max(float(np.abs(conn[v]).max()) for v in ("W", "J", "W_g"))
    assert {im.get_clim() for im in images} == {(-vmax, vmax)}


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
