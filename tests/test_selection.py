"""Model selection: the decision rule on hand-built scores, the partition enumeration,
the config's checks, a small ``disrnn select`` end to end, and the workflow's
``select`` rule and ``groups: auto``."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pandas as pd
import pytest

from disrnn.cli import main
from disrnn.fit import load_fit
from disrnn.fit.tensors import valid_bins
from disrnn.selection import MODULES, NO_EVIDENCE, SelectConfig, decide, integer_partitions
from disrnn.selection.folder import read_selection, selected_groups

SPREAD = np.array([-0.1, 0.0, 0.1])  # three seeds: sd 0.1, se 0.1 / sqrt(3) = 0.0577


def _rows(method, rank, partition, ll_mean, z=0.0, agreement=0.99):
    return [
        {"method": method, "rank": rank, "partition": partition, "seed": s,
         "val_ll_per_bin": ll_mean + d, "val_pc": 0.1, "val_pc_z": z, "agreement": agreement}
        for s, d in enumerate(SPREAD)
    ]  # fmt: skip


def _table(partitions) -> pd.DataFrame:
    """lrRNN means -30, -27, -25, -24.95 at K = 2, 4, 6, 8 (se 0.0577 each): the best is
    K = 8, and K = 6 is the smallest rank within max(se, 5 % of the gain 5.05) = 0.2525
    of it;
    the lrRNN of rank 5 (-25.05), fitted as the likelihood bar only, is not in the grid.
    ``partitions``: (label, DisRNN mean, independence z, agreement) at K = 6."""
    rows = []
    for k, m in ((2, -30.0), (4, -27.0), (6, -25.0), (8, -24.95)):
        rows += _rows("lrRNN", k, str(k), m, np.nan, np.nan)
    rows += [{**r, "role": "reference"} for r in _rows("lrRNN", 5, "5", -25.05, np.nan, np.nan)]
    for label, m, z, agreement in partitions:
        rows += _rows("DisRNN", 6, label, m, z, agreement)
    return pd.DataFrame(rows)


def test_rule_takes_the_smallest_rank_and_the_most_reproducible_admissible_partition():
    # the bar at K = 6: the lower of lrRNN's at K = 5 (-25.05; the rank step ignores
    # that reference) and lrRNN's at K = 6 minus the rank step's tolerance
    # (-25.0 - 0.2525). 5+1 costs more, 4+2 has dependent groups (z 3 > 2); 3+3 and
    # 2+2+2 are admissible, 3+3 agrees best.
    d = decide(_table([("3+3", -25.03, 1.0, 0.95), ("2+2+2", -25.0, 0.5, 0.60),
                       ("4+2", -25.01, 3.0, 0.99), ("5+1", -25.3, 0.0, 1.0)]))  # fmt: skip
    assert (d["rank"], d["best_rank"]) == (6, 8)
    assert d["rank_threshold"] == pytest.approx(-24.95 - 0.05 * 5.05)
    assert d["partition_threshold"] == pytest.approx(-25.0 - 0.05 * 5.05)
    assert d["reference_ll"] == pytest.approx(-25.05) and d["reference_rank"] == 5
    assert [r["rank"] for r in d["ranks"]] == [2, 4, 6, 8]
    assert d["verdict"] == MODULES and d["partition"] == [3, 3] == d["fit_groups"]
    flags = {r["partition"]: (r["keeps_likelihood"], r["independent"]) for r in d["partitions"]}
    assert flags == {"3+3": (True, True), "2+2+2": (True, True), "4+2": (True, False),
                     "5+1": (False, True)}  # fmt: skip
    assert "2 modules of sizes 3+3" in d["sentence"] and "0.95" in d["sentence"]


def test_partition_bar_is_the_lower_of_rank_k_minus_1_and_the_rank_tolerance():
    # lrRNN -30, -22, -20.3, -20.0 at K = 2, 4, 6, 8 (tolerance 0.5, K = 6) and -20.6 at
    # K = 5: the bar is min(-20.6, -20.3 - 0.5) = -20.8, so 3+3 at -20.7, below the
    # rank-5 lrRNN, keeps the likelihood; 4+2 at -20.9 does not
    curve = {2: -30.0, 4: -22.0, 6: -20.3, 8: -20.0}
    rows = [r for k, m in curve.items() for r in _rows("lrRNN", k, str(k), m, np.nan, np.nan)]
    rows += [{**r, "role": "reference"} for r in _rows("lrRNN", 5, "5", -20.6, np.nan, np.nan)]
    rows += _rows("DisRNN", 6, "3+3", -20.7, 0.0, 0.99) + _rows("DisRNN", 6, "4+2", -20.9, 0.0, 1.0)
    d = decide(pd.DataFrame(rows))
    assert d["rank"] == 6 and d["partition_threshold"] == pytest.approx(-20.8)
    flags = {r["partition"]: r["keeps_likelihood"] for r in d["partitions"]}
    assert flags == {"3+3": True, "4+2": False}
    assert d["verdict"] == MODULES and d["partition"] == [3, 3]
    # with the rank-5 lrRNN lower than that, its mean is the bar
    rows = [r for r in rows if not (r["rank"] == 5)]
    rows += [{**r, "role": "reference"} for r in _rows("lrRNN", 5, "5", -21.0, np.nan, np.nan)]
    d = decide(pd.DataFrame(rows))
    assert d["partition_threshold"] == pytest.approx(-21.0)
    flags = {r["partition"]: r["keeps_likelihood"] for r in d["partitions"]}
    assert flags == {"3+3": True, "4+2": True}


def test_rule_says_no_evidence_when_every_partition_costs_likelihood():
    d = decide(_table([("3+3", -25.30, 0.0, 0.99), ("4+2", -25.40, 0.0, 0.99)]))
    assert d["rank"] == 6 and d["verdict"] == NO_EVIDENCE and d["partition"] is None
    assert d["fit_groups"] == [3, 3]  # what groups: auto fits: the cheapest partition
    assert "no evidence for modules" in d["sentence"] and "3+3" in d["sentence"]
    assert "lrRNN at K = 5" in d["sentence"]
    rows = _table([("3+3", -25.0, 0.0, 0.99)])
    d = decide(rows[rows["role"] != "reference"])  # no lrRNN of rank K - 1: no bar
    assert d["verdict"] == NO_EVIDENCE and "no lrRNN of rank 5" in d["sentence"]


def test_rule_says_no_evidence_when_the_groups_are_dependent_or_the_seeds_disagree():
    d = decide(_table([("3+3", -25.0, 5.0, 0.99), ("4+2", -25.0, 2.5, 0.99)]))
    assert d["verdict"] == NO_EVIDENCE and d["partition"] is None
    assert "dependent groups (lowest independence z = 2.5" in d["sentence"]
    d = decide(_table([("3+3", -25.0, 0.0, 0.62), ("4+2", -25.0, 0.0, 0.41)]))
    assert d["verdict"] == NO_EVIDENCE and d["partition"] is None
    assert d["candidate"] == [3, 3] == d["fit_groups"]
    assert "not reproduced across seeds" in d["sentence"] and "0.62" in d["sentence"]


def test_rule_rejects_groups_whose_next_step_the_others_predict():
    """A partition within the PC surrogates whose groups' dynamics are coupled (cross
    share above CROSS_SHARE_MAX) is not independent; an unmeasured share rejects nothing."""
    from disrnn.selection.rule import CROSS_SHARE_MAX

    t = _table([("3+3", -25.0, 0.5, 0.99), ("4+2", -25.0, 3.0, 0.99)])
    dis = t["method"] == "DisRNN"
    t.loc[dis, "val_cross_share"] = np.where(t.loc[dis, "partition"] == "3+3", 0.2, 0.0)
    d = decide(t)
    assert d["verdict"] == NO_EVIDENCE and d["partition"] is None
    flags = {r["partition"]: r["independent"] for r in d["partitions"]}
    assert flags == {"3+3": False, "4+2": False}
    assert "20% or more of a group's next step" in d["sentence"]
    t.loc[dis, "val_cross_share"] = np.where(
        t.loc[dis, "partition"] == "3+3", CROSS_SHARE_MAX / 2, np.nan
    )
    d = decide(t)
    assert d["verdict"] == MODULES and d["partition"] == [3, 3]
    assert "cross share 0.03" in d["sentence"]
    t.loc[dis, "val_cross_share"] = np.nan  # not measured: PC alone decides
    assert decide(t)["partition"] == [3, 3]


def test_rule_with_one_seed_takes_the_most_independent_admissible_partition():
    rows = _rows("lrRNN", 6, "6", -25.0, np.nan, np.nan) + _rows("lrRNN", 5, "5", -25.5)
    rows += _rows("DisRNN", 6, "3+3", -25.0, 1.5, np.nan) + _rows(
        "DisRNN", 6, "4+2", -25.0, 0.5, np.nan
    )
    t = pd.DataFrame(rows)
    d = decide(t[t["seed"] == 1])  # one seed: se 0, agreement not measured
    assert d["verdict"] == MODULES and d["partition"] == [4, 2]
    assert "agreement not measured with one seed" in d["sentence"]


def test_rule_decides_at_the_likelihood_rank_and_reports_the_others():
    """The likelihood rank is K = 8 (lrRNN -24.0), where the only partition costs more
    than a latent dimension (below lrRNN at K = 7); K = 4 and K = 6 pass the same tests
    and are reported, not chosen: the verdict stays at K = 8."""
    ref = [("lrRNN", 3, "3", -28.0), ("lrRNN", 5, "5", -25.5), ("lrRNN", 7, "7", -24.5)]
    rows = [r for k, m in ((4, -27.0), (6, -25.0), (8, -24.0))
            for r in _rows("lrRNN", k, str(k), m, np.nan, np.nan)]  # fmt: skip
    rows += [{**r, "role": "reference"} for a in ref for r in _rows(*a, np.nan, np.nan)]
    rows += _rows("DisRNN", 4, "2+2", -27.2, 0.5, 0.97) + _rows("DisRNN", 4, "3+1", -27.1, 1.0, 0.5)
    rows += _rows("DisRNN", 6, "3+3", -25.1, 0.0, 0.98) + _rows(
        "DisRNN", 8, "4+4", -24.7, 0.0, 0.99
    )
    d = decide(pd.DataFrame(rows))
    assert (d["rank"], d["verdict"], d["partition"], d["reference_rank"]) == (
        8,
        NO_EVIDENCE,
        None,
        7,
    )
    assert [p["partition"] for p in d["partitions"]] == ["4+4"]  # the chosen rank's table
    by_rank = {r["rank"]: (r["partition"], r["modules"]) for r in d["ranks_with_partitions"]}
    assert by_rank == {4: ("2+2", True), 6: ("3+3", True), 8: (None, False)}
    assert "other ranks pass the same tests: 2+2 at K = 4, 3+3 at K = 6" in d["sentence"]
    # K = 8 is the top of the grid 4, 6, 8: the sentence says to widen it
    assert d["rank_at_top"] and "K = 8 is the largest rank tried" in d["sentence"]
    assert "select.ranks" in d["sentence"]


def test_rank_step_allows_the_larger_of_one_se_and_a_share_of_the_gain():
    """The rank threshold is the best rank's mean minus max(se, 5 % of best - worst)."""
    curve = {2: -30.0, 4: -22.0, 6: -20.3, 8: -20.0}  # the rise past the knee: 0.3 of 10
    rows = [r for k, m in curve.items() for r in _rows("lrRNN", k, str(k), m, np.nan, np.nan)]
    d = decide(pd.DataFrame(rows))
    # one se (0.0577) alone would take K = 8; 5 % of the gain (0.5) takes K = 6, not 4
    assert (d["rank"], d["best_rank"]) == (6, 8)
    assert not d["rank_at_top"] and "largest rank tried" not in d["sentence"]
    assert d["rank_threshold"] == pytest.approx(-20.0 - 0.5)
    assert "better by less than one standard error or 5% of the likelihood" in d["sentence"]
    # a flat curve: the gain (0.04) is below the se, which then sets the threshold
    flat = {2: -20.04, 4: -20.02, 6: -20.0}
    rows = [r for k, m in flat.items() for r in _rows("lrRNN", k, str(k), m, np.nan, np.nan)]
    d = decide(pd.DataFrame(rows))
    assert d["rank_threshold"] == pytest.approx(-20.0 - 0.1 / np.sqrt(3))
    assert d["rank"] == 2


def test_rule_with_a_clear_best_rank_and_no_partition_tried():
    rows = _rows("lrRNN", 2, "2", -30.0) + _rows("lrRNN", 4, "4", -20.0)
    d = decide(pd.DataFrame(rows))
    assert (d["rank"], d["best_rank"]) == (4, 4)
    assert d["verdict"] == NO_EVIDENCE and d["fit_groups"] == [4]


def test_rule_ignores_a_diverged_seed():
    rows = _table([("3+3", -25.03, 0.0, 0.99)])
    rows.loc[(rows["partition"] == "3+3") & (rows["seed"] == 0), "val_ll_per_bin"] = np.nan
    d = decide(rows)
    assert next(r for r in d["partitions"] if r["partition"] == "3+3")["n"] == 2


# -------------------------------------------------------------------------- evidence
@pytest.mark.parametrize(
    "preset, independent",
    [("lorenz-thomas", True), ("rotation-limitcycle", True), ("coupled-gaussian", False)],
)
def test_independence_test_on_the_true_latents(preset, independent):
    """The simulator's truth is the independent answer: its groups are independent
    systems, except in the coupled control, whose two halves are diffusively coupled."""
    from disrnn.selection.evidence import independence_test
    from disrnn.selection.rule import CROSS_SHARE_MAX, INDEPENDENCE_Z
    from disrnn.simulate import simulate

    s = simulate(preset, seed=0)
    z = s.latents[1::10]  # the benchmark's validation trials
    r = independence_test(z, np.ones(z.shape[:2], bool), s.latent_group)
    assert (r["pc_z"] <= INDEPENDENCE_Z) == independent
    assert (r["cross_share"] <= CROSS_SHARE_MAX) == independent
    if not independent:
        assert r["pc_z"] > 3 * INDEPENDENCE_Z and r["cross_share"] > 3 * CROSS_SHARE_MAX
    one = independence_test(z, np.ones(z.shape[:2], bool), np.zeros(z.shape[2], int))
    assert np.isnan(one["pc_z"])  # one group: nothing to test


@pytest.mark.parametrize("coupling", [0.0, 1.0])
def test_cross_share_is_the_variance_share_the_other_group_adds(coupling):
    """y(t+1) = 0.8 y(t) + c x(t) + e(t+1) with x and e white unit noise: y's own past
    leaves var c^2 + 1 of y's next step unexplained and x(t) explains c^2 of it, so the
    cross share is c^2 / (1 + c^2) (x's next step is white: nothing predicts it)."""
    from disrnn.selection.evidence import independence_test

    rng = np.random.default_rng(0)
    x, e = rng.standard_normal((2, 20, 50))
    y = np.zeros((20, 50))
    for t in range(1, 50):
        y[:, t] = 0.8 * y[:, t - 1] + coupling * x[:, t - 1] + e[:, t]
    ok = np.ones((20, 50), bool)
    ok[3, 10] = False  # a bin that is not scored breaks two pairs, nothing else
    r = independence_test(np.stack([x, y], -1), ok, [0, 1])
    assert r["cross_share"] == pytest.approx(coupling**2 / (1 + coupling**2), abs=0.03)
    # 3 trials of 3 bins: 6 pairs, fewer than twice a group's 4 regressors
    short = independence_test(np.stack([x, y], -1)[:3, :3], np.ones((3, 3), bool), [0, 1])
    assert np.isnan(short["cross_share"]) and np.isfinite(short["pc"])

    from disrnn.selection.evidence import group_agreement

    rng = np.random.default_rng(0)
    groups = np.array([0, 0, 1, 1])
    a = rng.standard_normal((2000, 4))
    block = np.zeros((4, 4))
    block[:2, :2], block[2:, 2:] = rng.standard_normal((2, 2, 2)) + 2 * np.eye(2)
    assert group_agreement([a, a @ block + 3.0], groups) == pytest.approx(1.0, abs=1e-6)
    mix = np.linalg.qr(rng.standard_normal((4, 4)))[0]  # an orthogonal map across groups
    assert group_agreement([a, a @ mix], groups) < 0.75
    assert np.isnan(group_agreement([a], groups))


@pytest.mark.parametrize(
    "n, max_parts, count",
    # the partition numbers p(n) and p(n, <= k parts) (OEIS A000041, A001400 / A001402)
    [(1, None, 1), (5, None, 7), (6, None, 11), (8, None, 22), (6, 4, 9), (8, 4, 15),
     (6, 2, 4), (7, 3, 8)],
)  # fmt: skip
def test_integer_partitions_counts(n, max_parts, count):
    parts = integer_partitions(n, max_parts)
    assert len(parts) == count == len(set(parts))
    for p in parts:
        assert sum(p) == n and list(p) == sorted(p, reverse=True)
        assert max_parts is None or len(p) <= max_parts


def test_select_config_candidates_and_errors():
    cfg = SelectConfig(ranks=(6, 4), max_groups=4, seeds=2)
    assert cfg.ranks == (4, 6) and len(cfg.partitions_of(6)) == 8  # p(6, <= 4) minus (6,)
    assert SelectConfig(ranks=(6,), partitions=[[3, 3], [2, 4]]).partitions_of(6) == [
        (3, 3), (4, 2)
    ]  # fmt: skip
    for bad, match in (
        ({"seeds": 1}, "seeds must be an integer >= 2"),
        ({"ranks": (4, 10)}, "ranks \\[10\\] are above 8"),
        ({"ranks": (4,), "partitions": [[3, 3]]}, "sums to 6, which is not one of the ranks"),
        ({"partitions": [[6]]}, ">= 2 groups"),
        ({"partitions_at": "some"}, "partitions_at must be one of selected, all"),
    ):
        with pytest.raises(ValueError, match=match):
            SelectConfig(**bad)
    with pytest.raises(ValueError, match="unknown select option"):
        SelectConfig.from_options({"rank": [3]})


# ------------------------------------------------------------------------ end to end
def test_disrnn_select_end_to_end(tmp_path, toy_dataset, capsys):
    """A tiny grid on the toy dataset (two independent 3-d groups): every candidate is
    fitted and scored, DisRNN partitions start from the lrRNN of their rank and seed, and
    the validation likelihood is the fit's own NLL on the val trials."""
    ds = toy_dataset(n_trials=24, n_time=30)
    path = tmp_path / "ds.nc"
    ds.to_netcdf(path)
    out = tmp_path / "sel"
    argv = ["select", str(path), "--out", str(out), "--ranks", "2,3", "--seeds", "2",
            "--epochs", "3", "--partitions-at", "all", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    sel, cand = read_selection(out)
    assert "K = " in capsys.readouterr().out
    # 2 ranks x 2 seeds lrRNN; the rank-1 lrRNN, the likelihood bar of the partitions of
    # 2; partitions (1,1) of 2 and (2,1), (1,1,1) of 3, x 2 seeds
    assert len(cand) == 4 + 2 + 2 * 3
    assert set(cand["partition"]) == {"1", "2", "3", "1+1", "2+1", "1+1+1"}
    assert (cand.loc[cand["partition"] == "1", "role"] == "reference").all()
    assert [r["rank"] for r in sel["ranks"]] == [2, 3]  # the reference is not a rank tried
    dis = cand[cand["method"] == "DisRNN"]
    assert np.isfinite(dis["val_pc_z"]).all() and (dis["agreement"] <= 1).all()
    assert sel["rank"] in (2, 3) and sel["verdict"] in (MODULES, NO_EVIDENCE)
    assert (
        tuple(sel["fit_groups"]) == selected_groups(out) and sum(sel["fit_groups"]) == sel["rank"]
    )
    row = cand[(cand["partition"] == "2+1") & (cand["seed"] == 1)].iloc[0]
    info = json.loads((out / row["fit_dir"] / "fit_info.json").read_text())
    assert info["pretrain"]["init_from"].endswith("fits/lrRNN/3/seed1")
    f = load_fit(out / row["fit_dir"])
    val = ds.isel(trial=np.flatnonzero(ds["split"].values == "val"))
    ok = valid_bins(val, f.history)
    want = -f.nll(val).values.sum(-1)[ok].mean()
    assert row["val_ll_per_bin"] == pytest.approx(want, rel=1e-9)
    assert np.isnan(row["val_co_bps"])  # no held-out units
    lr = cand[cand["method"] == "lrRNN"]
    assert (lr["val_pc"] == 0).all() and (
        cand.loc[cand["method"] == "DisRNN", "val_pc"] > -0.1
    ).all()
    # a previous selection is replaced; any other folder is refused without --force
    assert main([*argv[:3], str(out), *argv[4:]]) == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    assert main([*argv[:3], str(other), *argv[4:]]) == 2
    assert (other / "keep.txt").exists()


# ---------------------------------------------------------------------------- report
def _selection_folder(path, partitions, session="fake_a", cross=None):
    """A selection folder written from the hand-built table (no fit); ``cross``:
    partition -> cross share of its DisRNN rows."""
    from disrnn.selection.folder import write_selection
    from disrnn.selection.rule import RULE

    table = _table(partitions)
    if cross:
        table["val_cross_share"] = table["partition"].map(cross)
    path.mkdir(parents=True)
    write_selection(
        path, table.to_dict("records"), decide(table), {"rule": RULE, "session": session}
    )
    return path


def _table_rows(text: str, table_id: str) -> list[list[str]]:
    """The cell texts of each body row of the table ``table_id``."""
    table = re.search(rf'<table id="{table_id}".*?</table>', text, flags=re.S).group(0)
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", tr, flags=re.S)
            for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", table, flags=re.S)]  # fmt: skip
    return [[html.unescape(c).strip() for c in r] for r in rows if r]


def test_reports_show_how_many_modules(tmp_path):
    from helpers.reports import fake_dataset, write_fake_eval

    from disrnn.data.io import save_dataset
    from disrnn.report import render_session_report, render_summary_report

    root = tmp_path / "results"
    ds = fake_dataset(np.random.default_rng(0))
    dpath = save_dataset(ds, root / "fake_a" / "dataset.nc")
    evals = [write_fake_eval(root, "fake_a", "DisRNN", s, ds) for s in (0, 1)]
    parts = [("3+3", -25.03, 0.5, 0.97), ("5+1", -25.3, 0.1, 1.0)]
    sel = _selection_folder(tmp_path / "sel", parts, cross={"3+3": 0.012, "5+1": 0.2})
    text = render_session_report("fake_a", dpath, evals, tmp_path / "a.html", sel).read_text()
    sentence = json.loads((sel / "selection.json").read_text())["sentence"]
    assert text.count("2 modules of sizes 3+3") >= 2  # the summary box and the section
    assert 'id="modules-verdict"' in text and "The rule:" in text
    assert "Held-out likelihood against K" in text and "data:image/png;base64" in text
    ranks = _table_rows(text, "modules-ranks")
    assert [c[0] for c in ranks] == ["2", "4", "6 (selected)", "8"]
    assert ranks[2][4:] == ["3+3", "yes"] and ranks[0][4:] == ["–", "–"]
    parts = {c[0]: c for c in _table_rows(text, "modules-partitions")}
    assert parts["3+3 (chosen)"][3:8] == ["0.5", "0.012", "0.97", "yes", "yes"]
    assert parts["5+1"][4:8] == ["0.2", "1", "no", "no"]  # costs likelihood, dynamics coupled
    none = render_session_report("fake_a", dpath, evals, tmp_path / "b.html").read_text()
    assert "No model selection was run for this session" in none and sentence not in none
    index = render_summary_report(evals, tmp_path / "index.html", [sel]).read_text()
    assert _table_rows(index, "selection-table") == [["fake_a", "6", "3+3", "modules"]]
    index = render_summary_report(evals, tmp_path / "index.html").read_text()
    assert _table_rows(index, "selection-table") == [["fake_a", "–", "–", "no selection run"]]


# -------------------------------------------------------------------------- workflow
def _dry_run(tmp_path, name: str, config: dict):
    from helpers.workflow import snakemake, write_config

    cfg = write_config(tmp_path / f"{name}.yaml", config)
    return snakemake("--dry-run", "--configfile", str(cfg), cwd=tmp_path)


def _sim(sid: str, **extra) -> dict:
    return {"id": sid, "simulate": {"preset": "lorenz-thomas", "seed": 0}, **extra}


def test_select_config_errors_name_session_and_field(tmp_path):
    config = {
        "select": {"epochs": 0},
        "sessions": [
            _sim("s1"),
            _sim("s2", select={"ranks": [4, 12], "epochs": 5}),
            _sim("s3", fit={"groups": "auto"}, select={"enabled": False, "epochs": 5}),
        ],
    }
    res = _dry_run(tmp_path, "bad", config)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "invalid config" in out and "Job stats" not in out
    for pattern in (
        r"field 'select\.epochs': epochs must be an integer >= 1, got 0",
        r"session 's2' \(sessions\[1\]\), field 'select\.ranks': ranks \[12\] are above 8",
        r"session 's3' \(sessions\[2\]\), field 'fit\.groups': groups: auto fits the partition",
    ):
        assert re.search(pattern, out), f"{pattern} not in:\n{out}"


def test_groups_auto_fits_and_references_read_the_selection(tmp_path):
    """groups: auto puts the session's selection.json among the inputs of its fits and its
    reference; a session with explicit groups fits without waiting for its selection."""
    from helpers.workflow import small_config

    config = small_config()
    config["sessions"].append(
        {**config["sessions"][0], "id": "sim-auto", "fit": {"groups": "auto"}}
    )
    res = _dry_run(tmp_path, "auto", config)
    assert res.returncode == 0, res.stderr
    jobs = re.split(r"\n(?=(?:local)?rule \S+:)", res.stdout)
    inputs = {}
    for job in jobs:
        rule = re.match(r"(?:local)?rule (\S+):", job)
        out = re.search(r"output: (\S+?)(?:,|\n)", job)
        if rule and out:
            found = re.search(r"input: (.*)", job)
            inputs[(rule.group(1), out.group(1))] = found.group(1) if found else ""
    auto = {k: v for k, v in inputs.items() if k[1].startswith("results/sim-auto/")}
    fits = [v for (rule, _), v in auto.items() if rule in ("fit", "fit_posthoc", "reference")]
    assert len(fits) == 4  # lrRNN, DisRNN, lrRNN+ICA, the reference
    assert all("results/sim-auto/selection/selection.json" in v for v in fits)
    plain = [v for (rule, o), v in inputs.items() if rule == "fit" and "sim-small/" in o]
    assert plain and not any("selection" in v for v in plain)
    assert ("select", "results/sim-auto/selection/selection.json") in inputs
    report = next(
        v for (rule, o), v in inputs.items() if rule == "session_report" and "sim-small" in o
    )
    assert "results/sim-small/selection/selection.json" in report


def test_fit_script_takes_the_selected_groups(tmp_path):
    import importlib.util
    from pathlib import Path
    from types import SimpleNamespace

    sel = _selection_folder(
        tmp_path / "sel", [("4+2", -25.01, 0.3, 0.92), ("3+3", -25.03, 0.1, 0.97)]
    )
    path = Path(__file__).resolve().parents[1] / "workflow/scripts/fit.py"
    spec = importlib.util.spec_from_file_location("wf_fit", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    params = SimpleNamespace(method="DisRNN", options={"groups": "auto", "epochs": 3})
    cfg = module.fit_config(params, str(sel / "selection.json"))
    assert cfg.groups == (3, 3) and cfg.epochs == 3
    params = SimpleNamespace(method="lrRNN", options={"groups": "auto"})
    assert module.fit_config(params, str(sel / "selection.json")).groups == (6,)
