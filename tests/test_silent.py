"""Inputs that used to give silently wrong results: each now gets a clear error, or a
warning where the data may be legitimate (fit, binning, evaluation, report).

The config errors that must stop the workflow before any job are in tests/test_config.py.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers.datasets import toy_dataset
from helpers.reports import fake_dataset, write_fake_eval
from nwb_factory import poisson_spikes, write_nwb

from disrnn.cli import main
from disrnn.data import splits
from disrnn.data.binning import BinConfig, bin_session
from disrnn.data.io import load_dataset, nwb_changed, save_dataset

REAL_MTL = (
    Path(__file__).resolve().parent.parent
    / ".."
    / "shared"
    / "data"
    / "sub-4_ses-4_ecephys+image.nwb"
)


def _spikes(seed=0, **kw):
    return toy_dataset(n_trials=24, n_time=30, n_units=12, seed=seed, kind="spike_counts", **kw)


@pytest.fixture(scope="module")
def spike_fit(tmp_path_factory):
    """A one-epoch lrRNN on toy spike counts, its dataset saved beside it."""
    from disrnn.fit import fit
    from disrnn.fit.config import FitConfig

    root = tmp_path_factory.mktemp("silent")
    path = save_dataset(_spikes(), root / "d.nc")
    cfg = FitConfig.create("lrRNN", groups=(2,), epochs=1)
    return root, path, fit(path, cfg, root / "fit", seed=0, device="cpu", progress=False)


# ------------------------------------------------------------------ the fit's data rules
@pytest.mark.parametrize(
    ("value", "message"),
    [(-1, r"1 negative values \(the first -1 at trial 0, bin 3, unit 105\)"), (0.5, "fractional")],
)
def test_poisson_fit_refuses_negative_or_fractional_counts(tmp_path, spike_fit, value, message):
    from disrnn.evaluation import evaluate
    from disrnn.fit import fit
    from disrnn.fit.config import FitConfig

    ds = _spikes()
    ds["activity"] = ds["activity"].astype(np.float32)  # kind stays spike_counts
    ds["activity"][0, 3, 5] = value
    with pytest.raises(ValueError, match=message):
        fit(ds, FitConfig.create("lrRNN", groups=(2,), epochs=1), tmp_path / "f", progress=False)
    assert not (tmp_path / "f").exists()
    _, _, fit_dir = spike_fit
    with pytest.raises(ValueError, match=message):  # evaluation applies the same rule
        evaluate(fit_dir, ds, tmp_path / "e", allow_other_dataset=True)
    assert not (tmp_path / "e").exists()


def test_the_likelihood_and_the_kind_decide_what_values_are_allowed():
    from disrnn.fit.tensors import check_values

    cont = toy_dataset(n_trials=8, n_time=10, n_units=4)  # continuous, has negative values
    assert (cont["activity"].values < 0).any()
    check_values(cont, "gaussian")
    with pytest.raises(ValueError, match="the Poisson likelihood needs activity >= 0"):
        check_values(cont, "poisson")
    rescaled = cont.copy(deep=True)
    rescaled["activity"] = np.abs(rescaled["activity"])  # fractional, >= 0: unit-max data
    check_values(rescaled, "poisson")
    counts = _spikes()
    counts["activity"][1, 2, 0] = -2
    with pytest.raises(ValueError, match="spike counts are >= 0"):
        check_values(counts, "gaussian")


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (None, "no 'split' coordinate"),
        (
            ["train", "Train", "val", "test", "holdout"],
            r"'Train' \(5 trials\), 'holdout' \(4 trials\)",
        ),
    ],
)
def test_fit_and_evaluate_refuse_missing_or_unknown_split_labels(
    tmp_path, spike_fit, labels, message
):
    from disrnn.evaluation import evaluate
    from disrnn.fit import fit
    from disrnn.fit.config import FitConfig

    ds = _spikes().drop_vars("split")
    if labels is not None:
        ds = ds.assign_coords(split=("trial", np.array(labels * 5)[: ds.sizes["trial"]]))
    with pytest.raises(ValueError, match=message):
        fit(ds, FitConfig.create("lrRNN", groups=(2,), epochs=1), tmp_path / "f", progress=False)
    with pytest.raises(ValueError, match=message):
        evaluate(spike_fit[2], ds, tmp_path / "e", allow_other_dataset=True)
    assert not (tmp_path / "f").exists() and not (tmp_path / "e").exists()


def test_units_without_training_spikes_are_fitted_with_a_warning(tmp_path, caplog):
    from disrnn.fit import fit
    from disrnn.fit.config import FitConfig

    ds = _spikes()
    train = ds["split"].values == "train"
    ds["activity"][np.flatnonzero(train), :, 3] = 0  # unit 103: spikes only outside train
    ds["activity"][np.flatnonzero(train), :, 7] = 0  # unit 107
    assert ds["activity"][:, :, 3].sum() > 0
    with caplog.at_level(logging.WARNING):
        out = fit(
            ds, FitConfig.create("lrRNN", groups=(2,), epochs=1), tmp_path / "f", progress=False
        )
    assert "2 of 12 units have no spike in the training bins" in caplog.text
    assert "units 103, 107" in caplog.text
    assert json.loads((out / "fit_info.json").read_text())["silent_units"] == [103, 107]


# --------------------------------------------------------------------------- evaluation
def test_evaluate_refuses_another_dataset_unless_allowed(tmp_path, spike_fit, caplog, capsys):
    from disrnn.evaluation import evaluate

    root, _, fit_dir = spike_fit
    other = save_dataset(_spikes(seed=1), tmp_path / "other.nc")  # same units, other data
    with pytest.raises(ValueError, match="differs from the one the fit .* allow_other_dataset"):
        evaluate(fit_dir, other, tmp_path / "e")
    assert not (tmp_path / "e").exists()
    argv = ["evaluate", str(fit_dir), str(other), "--out", str(tmp_path / "cli")]
    assert main(argv) == 2
    assert "--allow-other-dataset" in capsys.readouterr().err
    with caplog.at_level(logging.WARNING):
        assert main([*argv, "--allow-other-dataset"]) == 0
    assert "evaluating anyway" in caplog.text
    metrics = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert (
        metrics["activity_sha256"]
        != json.loads((fit_dir / "config.json").read_text())["dataset"]["activity_sha256"]
    )


def test_evaluate_refuses_an_unfinished_fit(tmp_path, spike_fit):
    from disrnn.evaluation import evaluate

    _, path, fit_dir = spike_fit
    unfinished = shutil.copytree(fit_dir, tmp_path / "fit")
    (unfinished / "fit_info.json").unlink()
    with pytest.raises(FileNotFoundError, match="has no fit_info.json: the fit did not finish"):
        evaluate(unfinished, path, tmp_path / "e")
    assert not (tmp_path / "e").exists()


# ------------------------------------------------------------------------------- report
def _evals(root: Path, ds, sha="a" * 64):
    out = []
    for method, seed in (("DisRNN", 0), ("DisRNN", 1), ("lrRNN", 0)):
        ev = write_fake_eval(root, "s1", method, seed, ds)
        m = json.loads((ev / "metrics.json").read_text())
        (ev / "metrics.json").write_text(json.dumps({**m, "activity_sha256": sha}))
        out.append(ev)
    return out


def test_report_refuses_duplicate_seeds_and_mixed_datasets(tmp_path):
    from disrnn.fit.tensors import activity_sha256
    from disrnn.report import render_session_report, render_summary_report

    ds = fake_dataset(np.random.default_rng(0))
    ds_path = save_dataset(ds, tmp_path / "d.nc")
    evals = _evals(tmp_path / "results", ds, activity_sha256(ds))
    render_summary_report(evals, tmp_path / "ok.html")  # one dataset, each seed once
    render_session_report("s1", ds_path, evals, tmp_path / "ok_s1.html")

    again = shutil.copytree(evals[1], tmp_path / "copy" / "seed1")
    for render in (
        lambda e: render_summary_report(e, tmp_path / "x.html"),
        lambda e: render_session_report("s1", ds_path, e, tmp_path / "x.html"),
    ):
        with pytest.raises(ValueError, match="both evaluations of DisRNN seed 1"):
            render([*evals, again])
    other = _evals(tmp_path / "other", ds, "b" * 64)[2]  # lrRNN seed 0 of another dataset
    with pytest.raises(ValueError, match="evaluate different datasets"):
        render_summary_report([*evals[:2], other], tmp_path / "x.html")
    with pytest.raises(ValueError, match="evaluates another dataset than the report's"):
        render_session_report("s1", ds_path, [other], tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()


# ------------------------------------------------------------------------------ binning
def _overlapping_file(tmp_path, n_trials=20, spacing=1.0):
    rng = np.random.default_rng(0)
    starts = np.arange(n_trials) * spacing
    return write_nwb(
        tmp_path / "overlap.nwb",
        spike_times=poisson_spikes(rng, 3, n_trials * spacing + 2, 5.0),
        trials={"start_time": starts, "stop_time": starts + spacing},
    )


def _pairs(starts, length):
    """Independent truth: every pair of windows [s, s + length) that overlap, and by how much."""
    return [
        (i, j, length - abs(starts[j] - starts[i]))
        for i in range(len(starts))
        for j in range(i + 1, len(starts))
        if abs(starts[j] - starts[i]) < length - 1e-9
    ]


def test_overlapping_windows_warn_and_are_refused_across_splits(tmp_path, caplog, capsys):
    path = _overlapping_file(tmp_path)
    config = BinConfig(bin_width=0.1, window=(0.0, 2.5))  # 1 s apart: each overlaps 2 later
    truth = _pairs(np.arange(20.0), 2.5)
    assert len(truth) == 18 + 19 and max(p[2] for p in truth) == pytest.approx(1.5)
    with pytest.raises(ValueError, match=r"37 pairs of trial windows overlap, by up to 1\.5 s"):
        bin_session(path, config)
    with caplog.at_level(logging.WARNING):
        ds = bin_session(path, BinConfig(bin_width=0.1, window=(0.0, 2.5), allow_overlap=True))
    assert "37 pairs of trial windows overlap, by up to 1.5 s" in caplog.text
    assert ds.sizes["trial"] == 20
    out = tmp_path / "out" / "d.nc"
    argv = ["bin", str(path), "--out", str(out), "--bin-width", "0.1", "--window", "0", "2.5"]
    assert main(argv) == 2
    assert "--allow-overlap" in capsys.readouterr().err and not out.exists()
    assert main([*argv, "--allow-overlap"]) == 0 and out.exists()
    # windows that only touch do not overlap
    assert len(bin_session(path, BinConfig(bin_width=0.1, window=(0.0, 1.0))).trial) == 20


def test_overlaps_within_one_split_only_warn(caplog):
    starts = np.array([0.0, 0.5, 3.0, 3.2, 6.0])
    split = np.array(["train", "train", "test", "test", "val"])
    with caplog.at_level(logging.WARNING):
        splits.check_overlaps(np.arange(5) + 10, starts, 1.0, split, False, "f.nwb")
    assert "f.nwb: 2 pairs of trial windows overlap, by up to 0.8 s" in caplog.text
    assert "(0 pairs across splits)" in caplog.text
    i, j, seconds = splits.window_overlaps(starts, 1.0)
    assert sorted(zip(i, j, np.round(seconds, 9), strict=True)) == [
        (a, b, round(s, 9)) for a, b, s in _pairs(starts, 1.0)
    ]


@pytest.mark.skipif(not REAL_MTL.exists(), reason=f"real DANDI file absent ({REAL_MTL})")
def test_real_recognition_windows_overlap_and_are_refused():
    with h5py.File(REAL_MTL, "r") as f:
        align = f["intervals/recognition_table/fixcross_time"][:]
    truth = _pairs(align - 0.5, 2.0)
    assert truth  # the real file has trials closer than the 2 s window
    with pytest.raises(ValueError, match=f"{len(truth)} pairs of trial windows overlap"):
        bin_session(
            REAL_MTL,
            BinConfig(
                bin_width=0.05,
                trials="recognition_table",
                align="fixcross_time",
                window=(-0.5, 1.5),
            ),
        )


def test_binning_refuses_to_hold_out_every_unit(tmp_path):
    rng = np.random.default_rng(0)
    trials = {"start_time": np.arange(6.0), "stop_time": np.arange(6.0) + 1}
    spikes = poisson_spikes(rng, 3, 7.0, 5.0)
    path = write_nwb(tmp_path / "a.nwb", spike_times=spikes, trials=trials)
    with pytest.raises(ValueError, match="heldout_fraction 0.9 of 3 units holds out all 3"):
        bin_session(path, BinConfig(bin_width=0.5, heldout_fraction=0.9))
    marked = write_nwb(
        tmp_path / "b.nwb", spike_times=spikes, trials=trials,
        unit_columns={"heldout": np.array([True, True, True])},
    )  # fmt: skip
    with pytest.raises(ValueError, match="column marks every one of the 3 kept units"):
        bin_session(marked, BinConfig(bin_width=0.5))


def test_binning_warns_when_rounding_leaves_a_split_empty(tmp_path, caplog):
    rng = np.random.default_rng(0)
    trials = {"start_time": np.arange(4.0), "stop_time": np.arange(4.0) + 1}
    path = write_nwb(
        tmp_path / "a.nwb", spike_times=poisson_spikes(rng, 2, 5.0, 5.0), trials=trials
    )
    with caplog.at_level(logging.WARNING):
        ds = bin_session(path, BinConfig(bin_width=0.5))  # 0.7/0.15/0.15 of 4 trials
    counts = splits._counts(4, (0.7, 0.15, 0.15))  # independent of the warning's text
    empty = [n for n, c in zip(splits.SPLITS, counts, strict=True) if c == 0]
    assert empty and set(ds["split"].values) == set(splits.SPLITS) - set(empty)
    assert f"leaves no {' and no '.join(empty)} trials" in caplog.text
    with pytest.raises(ValueError, match="leaves no val trials"):
        BinConfig(bin_width=0.5, split=(0.8, 0.0, 0.2))


def test_a_stale_nwb_file_is_told_apart(tmp_path):
    rng = np.random.default_rng(0)
    trials = {"start_time": np.arange(4.0), "stop_time": np.arange(4.0) + 1}
    nwb = write_nwb(tmp_path / "a.nwb", spike_times=poisson_spikes(rng, 2, 5.0, 5.0), trials=trials)
    dataset = save_dataset(bin_session(nwb, BinConfig(bin_width=0.5)), tmp_path / "d.nc")
    assert nwb_changed(dataset, nwb) is None
    write_nwb(nwb, spike_times=poisson_spikes(rng, 2, 5.0, 5.0), trials=trials)  # replaced
    assert load_dataset(dataset).attrs["sha256"] != _sha256(nwb)
    message = nwb_changed(dataset, nwb)
    assert message and "stale" in message and str(nwb) in message
    assert nwb_changed(tmp_path / "missing.nc", nwb) is None


def _sha256(path):
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
