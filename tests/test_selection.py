"""Model selection: the decision rule on hand-built scores, the partition enumeration,
the config's checks, a small ``disrnn select`` end to end, and the workflow's
``select`` rule and ``groups: auto``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from disrnn.cli import main
from disrnn.fit import load_fit
from disrnn.fit.tensors import valid_bins
from disrnn.selection import MODULES, NO_EVIDENCE, SelectConfig, decide, integer_partitions
from disrnn.selection.folder import read_selection, selected_groups

SPREAD = np.array([-0.1, 0.0, 0.1])  # three seeds: sd 0.1, se 0.1 / sqrt(3) = 0.0577


def _rows(method, rank, partition, ll_mean, pc=0.0):
    return [
        {"method": method, "rank": rank, "partition": partition, "seed": s,
         "val_ll_per_bin": ll_mean + d, "val_pc": pc}
        for s, d in enumerate(SPREAD)
    ]  # fmt: skip


def _table(partitions) -> pd.DataFrame:
    """lrRNN means -30, -27, -25, -24.95 at K = 2, 4, 6, 8 (se 0.0577 each): the best is
    K = 8, and K = 6 (-25.0 >= -24.95 - 0.0577) is the smallest rank within one se."""
    rows = []
    for k, m in ((2, -30.0), (4, -27.0), (6, -25.0), (8, -24.95)):
        rows += _rows("lrRNN", k, str(k), m)
    for label, m, pc in partitions:
        rows += _rows("DisRNN", 6, label, m, pc)
    return pd.DataFrame(rows)


def test_rule_takes_the_smallest_rank_within_one_se_and_the_lowest_pc_that_keeps_ll():
    # threshold at K = 6: lrRNN's -25.0 - 0.0577 = -25.0577. 5+1 has the lowest PC but
    # costs 0.2 nats; 4+2 and 3+3 are within, 3+3 with the lower PC.
    d = decide(_table([("3+3", -25.03, 0.10), ("4+2", -25.01, 0.30), ("5+1", -25.2, 0.01)]))
    assert (d["rank"], d["best_rank"]) == (6, 8)
    assert d["rank_threshold"] == pytest.approx(-24.95 - 0.1 / np.sqrt(3))
    assert d["partition_threshold"] == pytest.approx(-25.0 - 0.1 / np.sqrt(3))
    assert d["verdict"] == MODULES and d["partition"] == [3, 3] == d["fit_groups"]
    within = {r["partition"]: r["within"] for r in d["partitions"]}
    assert within == {"3+3": True, "4+2": True, "5+1": False}
    assert "2 modules of sizes 3+3" in d["sentence"]


def test_rule_says_no_evidence_when_every_partition_costs_likelihood():
    d = decide(_table([("3+3", -25.10, 0.05), ("4+2", -25.30, 0.02)]))
    assert d["rank"] == 6 and d["verdict"] == NO_EVIDENCE and d["partition"] is None
    assert d["fit_groups"] == [3, 3]  # what groups: auto fits: the cheapest partition
    assert "no evidence for modules" in d["sentence"] and "3+3" in d["sentence"]


def test_rule_with_a_clear_best_rank_and_no_partition_tried():
    rows = _rows("lrRNN", 2, "2", -30.0) + _rows("lrRNN", 4, "4", -20.0)
    d = decide(pd.DataFrame(rows))
    assert (d["rank"], d["best_rank"]) == (4, 4)
    assert d["verdict"] == NO_EVIDENCE and d["fit_groups"] == [4]


def test_rule_ignores_a_diverged_seed():
    rows = _table([("3+3", -25.03, 0.1)])
    rows.loc[(rows["partition"] == "3+3") & (rows["seed"] == 0), "val_ll_per_bin"] = np.nan
    d = decide(rows)
    assert next(r for r in d["partitions"] if r["partition"] == "3+3")["n"] == 2


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
    # 2 ranks x 2 seeds lrRNN; partitions (1,1) of 2 and (2,1), (1,1,1) of 3, x 2 seeds
    assert len(cand) == 4 + 2 * 3
    assert set(cand["partition"]) == {"2", "3", "1+1", "2+1", "1+1+1"}
    assert sel["rank"] in (2, 3) and sel["verdict"] in (MODULES, NO_EVIDENCE)
    assert tuple(sel["fit_groups"]) == selected_groups(out) and sum(sel["fit_groups"]) == sel["rank"]
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
    assert (lr["val_pc"] == 0).all() and (cand.loc[cand["method"] == "DisRNN", "val_pc"] > -0.1).all()
    # a previous selection is replaced; any other folder is refused without --force
    assert main([*argv[:3], str(out), *argv[4:]]) == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    assert main([*argv[:3], str(other), *argv[4:]]) == 2
    assert (other / "keep.txt").exists()
