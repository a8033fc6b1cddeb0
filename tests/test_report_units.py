"""The session report's summary box, unit-map sections, glossary and seed counts, on
FIXTURE evaluation folders with known numbers (tests/helpers/reports.py)."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest
from helpers.reports import (
    fake_dataset,
    fake_metric_values,
    table_cells,
    write_fake_eval,
    write_fake_units,
)

from disrnn.data.io import save_dataset
from disrnn.report import load_eval, render_session_report, render_summary_report
from disrnn.report.render import fmt


def _box(text: str) -> str:
    m = re.search(r'<section class="box" id="summary">(.*?)</section>', text, flags=re.S)
    assert m, "no summary box"
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", m.group(1))))


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """DisRNN (2 seeds, with unit maps; seed 1's groups relabelled), lrRNN (one group),
    bdRNN and a smoothing reference on one fake session."""
    root = tmp_path_factory.mktemp("units") / "results"
    ds = fake_dataset(np.random.default_rng(7))
    dpath = save_dataset(ds, root / "s" / "dataset.nc")
    evals, maps = [], {}
    for method in ("DisRNN", "lrRNN", "bdRNN"):
        for seed in (0, 1):
            ev = write_fake_eval(root, "s", method, seed, ds)
            if method == "DisRNN":
                maps[seed] = write_fake_units(ev, ds, seed, swap=seed == 1)
            if method == "lrRNN":
                write_fake_units(ev, ds, seed, n_groups=1)
            evals.append(ev)
    ref = root / "s" / "evals" / "smoothing" / "seed0"
    ref.mkdir(parents=True)
    (ref / "metrics.json").write_text(
        json.dumps({"method": "smoothing", "seed": 0, "session": "s", "co_bps": 0.5})
    )
    evals.append(ref)
    out = render_session_report("s", dpath, evals, root / "s.html")
    return {
        "root": root,
        "ds": ds,
        "dataset": dpath,
        "evals": evals,
        "maps": maps,
        "text": out.read_text(),
    }


def test_summary_box_opens_the_report_with_the_comparisons(session):
    text = session["text"]
    assert text.index('id="summary"') < text.index('id="provenance"')
    box = _box(text)
    assert "2 groups of 2 + 2 latents, as set in the config (no model selection ran" in box
    assert 'id="verdict"' not in text  # no selection ran: no verdict is made up
    dis = [fake_metric_values("DisRNN", s)["co_bps"] for s in (0, 1)]
    bd = [fake_metric_values("bdRNN", s)["co_bps"] for s in (0, 1)]  # the best baseline
    ours = f"{fmt(np.mean(dis), 3)} ± {fmt(np.std(dis, ddof=1), 2)}"
    theirs = f"{fmt(np.mean(bd), 3)} ± {fmt(np.std(bd, ddof=1), 2)}"
    assert f"DisRNN {ours}; best baseline bdRNN {theirs} (DisRNN higher by 0.05)" in box
    # the fixture's smoothing reference has NLB's smoothing only, shown as the whole
    # trial's co-bps; DisRNN has no posterior, so its one-step co-bps stands in for it
    assert (
        f"co_bps_smoothed against NLB's smoothing (a kernel over past and later bins): DisRNN "
        f"{ours} (co_bps) vs 0.5 (DisRNN lower by {fmt(0.5 - np.mean(dis), 2)})"
    ) in box
    assert "DisRNN: 2 seeds (0, 1); unit assignments agree with adjusted Rand index 1" in box
    assert ", 1 (lowest 1) on the units one group dominates in both seeds." in box
    # the fixture's fits ran to their last epoch and were still improving
    assert "DisRNN seeds 0, 1: the validation loss was still improving at the last epoch" in box


def _warnings_of(root, ds, cases: dict):
    """Fake DisRNN evaluations, one per seed with ``cases[seed] = (fit_info, wanted)``;
    asserts each seed's warning holds ``wanted`` (None: no warning). (runs, warnings)."""
    from disrnn.report.summary_box import fit_warnings

    runs = []
    for seed, (info, _) in cases.items():
        ev = write_fake_eval(root.parent, root.name, "DisRNN", seed, ds)
        (root / "fits" / "DisRNN" / f"seed{seed}" / "fit_info.json").write_text(json.dumps(info))
        runs.append(load_eval(ev))
    warnings = fit_warnings(runs)
    for seed, (_, want) in cases.items():
        hit = [w for w in warnings if w.startswith(f"DisRNN seed {seed}:")]
        assert (want is None and not hit) or (len(hit) == 1 and want in hit[0]), (seed, warnings)
    return runs, warnings


def test_fit_warnings_name_early_stops_and_fits_that_never_improved(tmp_path):
    from disrnn.report.summary_box import fit_warnings

    ds = fake_dataset(np.random.default_rng(8))
    cases = {
        0: ({"best_epoch": 2, "epochs": 23, "stop_reason": "early_stopping"}, "epoch 3 of 23"),
        1: (
            {"best_epoch": 0, "epochs": 21, "stop_reason": "early_stopping"},
            "never improved after epoch 1",
        ),
        2: ({"best_epoch": 30, "epochs": 51, "stop_reason": "early_stopping"}, None),
    }
    runs, warnings = _warnings_of(tmp_path / "w", ds, cases)
    assert len(warnings) == 2
    # a warm-up delays the first epoch that can count: best epoch 9 after a 10-epoch ramp
    cfg = tmp_path / "w" / "fits" / "DisRNN" / "seed2" / "config.json"
    meta = json.loads(cfg.read_text()) | {"epochs": 100, "warmup": 0.1}
    cfg.write_text(json.dumps(meta))
    (cfg.parent / "fit_info.json").write_text(json.dumps({"best_epoch": 9, "epochs": 30}))
    (w,) = fit_warnings([load_eval(runs[2].path)])
    assert "never improved after epoch 10" in w


def test_fit_warnings_judge_a_rotation_init_by_its_pre_fit(tmp_path):
    """A fit with a rotation init that keeps the first weights of its training after the
    rotation kept the rotated beta = 0 fit, a trained model: no warning. Its pre-fit is
    judged like a fit, and the training after the rotation only for running out."""
    ds = fake_dataset(np.random.default_rng(9))
    kept = {"best_epoch": 0, "epochs": 4, "stop_reason": "early_stopping"}
    good_pre = {"best_epoch": 25, "epochs_run": 30, "stop_reason": "early_stopping"}
    cases = {
        0: (kept | {"pretrain": good_pre}, None),
        1: (
            kept | {"pretrain": {"best_epoch": 0, "epochs_run": 21, "stop_reason": "x"}},
            "beta = 0 pre-fit (before the rotation) never improved after epoch 1 (of 21",
        ),
        2: (
            kept | {"pretrain": {"best_epoch": 29, "epochs_run": 30}},
            "beta = 0 pre-fit (before the rotation) was still improving at the last epoch (30)",
        ),
        3: (
            {"best_epoch": 9, "epochs": 10, "stop_reason": "max_epochs", "pretrain": good_pre},
            "training after the rotation init was still improving at the last epoch (10)",
        ),
        4: (kept, "never improved after epoch 1 (of 4 run)"),  # no pre-fit: a lone fit
    }
    _warnings_of(tmp_path / "r", ds, cases)


def test_unit_map_sections_show_units_nc(session):
    text, ds, maps = session["text"], session["ds"], session["maps"]
    units = maps[0]  # the representative seed (median test LL: the lower seed on ties)
    cells = table_cells(text, "m-DisRNN-unit-table")
    n_cols = 1 + 2 + 1 + 2 + 2 + 1  # id, area, heldout, dominant, shares, drives, agreement
    rows = [cells[i : i + n_cols] for i in range(0, len(cells), n_cols)]
    assert len(rows) == ds.sizes["unit"]
    by_id = {int(r[0]["text"]): r for r in rows}
    assert set(by_id) == set(ds["unit"].values.tolist())  # NWB ids, not positions
    for i, uid in enumerate(units["unit"].values):
        row = by_id[int(uid)]
        assert row[0]["row-data-dominant"] == units["dominant"].values[i]
        assert row[2]["text"] == ("yes" if ds["heldout"].values[i] else "")
        assert [c["text"] for c in row[4:6]] == [fmt(v, 3) for v in units["share"].values[i]]
        assert [c["text"] for c in row[6:8]] == [fmt(v, 3) for v in units["drive"].values[i]]
        assert row[8]["text"] == "2"  # seed 1 is seed 0 with its groups relabelled
    # mixed units come last; the last unit reads both groups equally
    assert rows[-1][0]["row-data-dominant"] == "mixed"
    area = table_cells(text, "m-DisRNN-area-table")
    m1 = [c for c in area if c["row-data-area"] == "M1"]
    assert m1[1]["text"] == str(int((ds["area"].values == "M1").sum()))
    want = units["area_share"].sel(brain_area="M1").values
    assert [c["text"] for c in m1[2:4]] == [fmt(v, 3) for v in want]
    assert "&lt;script&gt;" in text and "<script" not in text.lower()
    assert "adjusted Rand index of the unit assignments 1 on average" in text
    assert "1 (lowest 1) on the units one group dominates in both seeds; groups matched" in text
    # lrRNN has one group: a sentence, no map; bdRNN has no units.nc: a sentence
    lr = text[text.index('id="m-lrRNN-units"') :]
    assert lr.index("One latent group") < lr.index("</section>")
    bd = text[text.index('id="m-bdRNN-units"') :]
    assert bd.index("this evaluation has no units.nc") < bd.index("</section>")
    assert "could not be drawn" not in text


def test_seed_counts_read_as_counts(session, tmp_path):
    text = session["text"]
    assert "DisRNN 2 seeds (0, 1)" in text and "Mean ± sd over a method's seeds" in text
    one = [e for e in session["evals"] if e.name == "seed0"]
    out = render_session_report("s", session["dataset"], one, tmp_path / "one.html").read_text()
    assert "One seed per method" in out and "DisRNN 1 seed (0)" in out
    assert "1 seed (0): agreement of the unit assignments across seeds needs two" in out
    summary = render_summary_report(one, tmp_path / "index.html").read_text()
    seeds = re.findall(r'data-method="DisRNN">.*?<td>([^<]*)</td>', summary, flags=re.S)
    assert seeds == ["1 seed (0)"]
    assert f"1 session, {len(one)} evaluated fits" in summary  # not "1 sessions"


def test_every_metric_row_has_a_glossary_entry_and_hover(session):
    from disrnn.report.glossary import describe, direction

    text = session["text"]
    keys = re.findall(r'<tr data-key="([^"]+)"><th title="([^"]*)"', text)
    assert keys
    # the fixture's made-up "bits_per_spike" (the pipeline's key is "bps") has no entry:
    # its hover is the key alone; every real key's names its meaning and direction
    missing = {key for key, title in keys if title == key}
    assert missing == {"bits_per_spike"}
    for key, title in keys:
        if key not in missing:
            assert title.startswith(f"{key}: ") and "better" in title, key
    glossary = {k for k in re.findall(r'<tr data-key="([^"]+)"><td><code>', text)}
    assert glossary == {k for k, _ in keys} - missing
    assert direction("pc") == "lower is better" and direction("co_bps") == "higher is better"
    assert describe("unknown_key") == "unknown_key"


def test_units_are_labelled_by_nwb_id_in_the_data_figures(session):
    from disrnn import plotting

    ds = session["ds"]
    ids = ds["unit"].values
    bars = plotting.plot_mean_rates(ds).axes[0]
    rates = ds["activity"].mean(("trial", "time")).values
    shown = [int(t.get_text()) for t in bars.get_xticklabels()]
    assert shown == ids[np.argsort(rates)[::-1]].tolist()
    raster = plotting.plot_rasters(ds).axes[0]
    held = ds["heldout"].values
    order = np.concatenate([ids[~held], ids[held]])
    assert [int(t.get_text()) for t in raster.get_yticklabels()] == order.tolist()


def test_eigenvalue_caption_explains_the_unit_circle(session):
    text = session["text"]
    assert "discrete time" in text and "|λ| = 1" in text
