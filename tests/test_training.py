"""The training loop: fit folder, determinism, resume, divergence, masks, recovery."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
from helpers.datasets import toy_dataset

import disrnn.fit.train as training
from disrnn.fit import DivergenceError, fit, load_fit
from disrnn.fit.config import FitConfig
from disrnn.fit.defaults import DEFAULT_BETA


def _weights(path):
    return torch.load(path / "weights.pt", weights_only=True)


def _same_weights(p1, p2) -> bool:
    w1, w2 = _weights(p1), _weights(p2)
    return w1.keys() == w2.keys() and all(torch.equal(w1[k], w2[k]) for k in w1)


@pytest.fixture(scope="module")
def ds():
    return toy_dataset(n_trials=24, n_time=30)


def test_fit_folder_contents(ds, tmp_path):
    out = fit(ds, FitConfig.create("DisRNN", epochs=4), tmp_path / "fit", seed=3, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "fit_info.json", "losses.csv", "weights.pt"
    ]  # fmt: skip
    assert not list(tmp_path.glob(".*"))  # no checkpoint or temp folder left behind
    meta = json.loads((out / "config.json").read_text())
    assert meta["method"] == "DisRNN" and meta["seed"] == 3 and meta["groups"] == [3, 3]
    beta = DEFAULT_BETA["continuous"]
    assert meta["beta"] == beta and meta["likelihood"] == "gaussian"  # resolved for continuous
    assert len(meta["dataset"]["activity_sha256"]) == 64
    losses = pd.read_csv(out / "losses.csv")
    assert list(losses.columns) == [
        "epoch", "split", "lr", "beta", "alpha", "total", "nll", "kl", "pc", "bd"
    ]  # fmt: skip
    assert set(losses["split"]) == {"train", "val"} and losses["epoch"].max() == 3
    tr = losses[losses.split == "train"]
    assert (tr.beta == beta).all() and (tr.alpha == 0.0).all()
    np.testing.assert_allclose(tr.total, tr.nll + tr.kl + beta * tr.pc, rtol=1e-5)
    info = json.loads((out / "fit_info.json").read_text())
    assert {"seconds", "epochs", "best_epoch", "stop_reason"} <= set(info)
    state = torch.load(out / "weights.pt", weights_only=True)
    assert "A" in state and "B_raw" in state
    f = load_fit(out)
    assert f.seed == 3 and f.config == FitConfig.from_dict(
        {k: v for k, v in meta.items() if k in FitConfig.__dataclass_fields__}
    )
    with pytest.raises(FileNotFoundError, match="weights.pt missing"):
        load_fit(tmp_path / "nothing")


def test_fit_from_saved_dataset_path_and_poisson(tmp_path):
    from disrnn.data.io import save_dataset

    ds = toy_dataset(n_trials=12, n_time=20, kind="spike_counts")
    path = save_dataset(ds, tmp_path / "ds.nc")
    out = fit(path, FitConfig.create("DisRNN", epochs=2, history=1), tmp_path / "f", progress=False)
    meta = json.loads((out / "config.json").read_text())
    assert meta["likelihood"] == "poisson" and meta["beta"] == 0.5
    assert meta["dataset"]["path"] == str(path) and len(meta["dataset"]["sha256"]) == 64
    nll = load_fit(out).nll(ds)
    assert np.isnan(nll.values[:, 0]).all() and np.isfinite(nll.values[:, 1:]).all()


def test_same_seed_same_numbers(ds, tmp_path):
    cfg = FitConfig.create("DisRNN", epochs=3)
    a = fit(ds, cfg, tmp_path / "a", seed=1, progress=False)
    b = fit(ds, cfg, tmp_path / "b", seed=1, progress=False)
    c = fit(ds, cfg, tmp_path / "c", seed=2, progress=False)
    assert _same_weights(a, b)
    assert not _same_weights(a, c)
    pd.testing.assert_frame_equal(pd.read_csv(a / "losses.csv"), pd.read_csv(b / "losses.csv"))


class _Killed(Exception):
    pass


def test_resume_equals_uninterrupted(ds, tmp_path):
    cfg = FitConfig.create("DisRNN", epochs=9, checkpoint_every=3, patience=100)
    full = fit(ds, cfg, tmp_path / "full", seed=5, progress=False)

    calls = []

    def kill(epoch):
        # DisRNN starts with 9 epochs of the beta = 0 objective (init="rotation"); kill in
        # the second phase after the checkpoint of epoch 5 (epochs 0..5 done)
        calls.append(epoch)
        if len(calls) > 9 and epoch == 7:
            raise _Killed

    out = tmp_path / "resumed"
    with pytest.raises(_Killed):
        fit(ds, cfg, out, seed=5, progress=False, on_epoch=kill)
    assert not out.exists()  # a killed run never leaves a folder that looks complete
    ckpt = tmp_path / ".resumed.checkpoint.pt"
    assert ckpt.exists()
    assert torch.load(ckpt, weights_only=True)["state"]["epoch"] == 6
    assert (tmp_path / ".resumed.checkpoint-pretrain.pt").exists()
    fit(ds, cfg, out, seed=5, progress=False)
    assert not ckpt.exists() and not list(tmp_path.glob(".resumed*"))
    assert _same_weights(full, out)
    pd.testing.assert_frame_equal(pd.read_csv(full / "losses.csv"), pd.read_csv(out / "losses.csv"))
    # a checkpoint of another config is not resumed from
    calls.clear()
    with pytest.raises(_Killed):
        fit(ds, cfg, tmp_path / "other", seed=5, progress=False, on_epoch=kill)
    fit(ds, cfg, tmp_path / "other", seed=6, progress=False)
    assert not _same_weights(full, tmp_path / "other")


def test_divergence_names_epoch_and_term(tmp_path):
    bad = toy_dataset(n_trials=8, n_time=10)
    bad["activity"][0, 5, 3] = 1e30  # a train trial: (x - mean)^2 overflows float32
    with pytest.raises(DivergenceError, match=r"epoch 0 \(train\): non-finite nll"):
        fit(bad, FitConfig.create("DisRNN", epochs=3), tmp_path / "f", progress=False)
    assert not (tmp_path / "f").exists()


def test_bad_inputs(ds, tmp_path):
    with pytest.raises(ValueError, match="unknown device"):
        fit(ds, FitConfig.create("lrRNN"), tmp_path / "f", device="tpu", progress=False)
    with pytest.raises(TypeError, match="FitConfig"):
        fit(ds, {"method": "lrRNN"}, tmp_path / "f", progress=False)
    nan = ds.copy(deep=True)
    nan["activity"][0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit(nan, FitConfig.create("lrRNN"), tmp_path / "f", progress=False)
    with pytest.raises(FileNotFoundError):
        fit(tmp_path / "missing.nc", FitConfig.create("lrRNN"), tmp_path / "f", progress=False)


def test_masked_bins_are_ignored(tmp_path):
    ds = toy_dataset(n_trials=12, n_time=20)
    mask = np.ones((12, 20), bool)
    mask[:, 12:15] = False
    ds["mask"] = (("trial", "time"), mask)
    cfg = FitConfig.create("DisRNN", epochs=3)
    a = fit(ds, cfg, tmp_path / "a", progress=False)
    ds2 = ds.copy(deep=True)
    ds2["activity"].values[:, 12:15] = 50.0  # garbage where unobserved
    b = fit(ds2, cfg, tmp_path / "b", progress=False)
    assert _same_weights(a, b)
    nll = load_fit(a).nll(ds)
    assert np.isnan(nll.values[:, 12:16]).all()  # masked bins and the bin after them
    assert np.isfinite(nll.values[:, 1:12]).all()


def test_penalty_warmup_ramps_beta(ds, tmp_path):
    cfg = FitConfig.create("DisRNN", epochs=6, warmup=0.5, beta=20.0)
    losses = pd.read_csv(fit(ds, cfg, tmp_path / "f", progress=False) / "losses.csv")
    tr = losses[losses.split == "train"]
    np.testing.assert_allclose(tr.beta, [20 / 3, 40 / 3, 20, 20, 20, 20])
    np.testing.assert_allclose(tr.total, tr.nll + tr.kl + tr.beta * tr.pc, rtol=1e-5)
    info = json.loads((tmp_path / "f" / "fit_info.json").read_text())
    assert info["best_epoch"] >= 2  # chosen only once the objective is complete


def test_no_val_trials_trains_on_train_loss(tmp_path):
    ds = toy_dataset(n_trials=8, n_time=20)
    ds = ds.assign_coords(split=("trial", np.array(["train", "test"] * 4)))
    out = fit(ds, FitConfig.create("bdRNN", epochs=3), tmp_path / "f", progress=False)
    losses = pd.read_csv(out / "losses.csv")
    assert set(losses["split"]) == {"train"} and (losses.bd > 0).all()


def _max_canonical_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Largest canonical correlation between the columns of a and b: (sample, dims)."""
    qa, _ = np.linalg.qr(a - a.mean(0))
    qb, _ = np.linalg.qr(b - b.mean(0))
    return float(np.linalg.svd(qa.T @ qb, compute_uv=False)[0])


def test_recovery_disrnn_decorrelates_groups_where_beta_zero_does_not(tmp_path):
    """Two independent latent groups: DisRNN's inferred groups must be nearly independent
    (small canonical correlation between them), while the same model with beta = 0 (an
    lrRNN with the latents split in two) mixes them. A PC term that stops working fails."""
    ds = toy_dataset(n_trials=40, n_time=50)
    test = ds["split"].values == "test"
    cc = {}
    for name, beta in (("DisRNN", 20.0), ("beta0", 0.0)):
        cfg = FitConfig.create("DisRNN", beta=beta, epochs=20)
        f = load_fit(fit(ds, cfg, tmp_path / name, seed=0, progress=False))
        lat = f.latents(ds).values[test][:, 1:].reshape(-1, 6)
        cc[name] = _max_canonical_correlation(lat[:, :3], lat[:, 3:])
    assert cc["DisRNN"] < 0.4, cc
    assert cc["beta0"] > 0.8, cc


def test_restarts_keep_lowest_selection_objective(ds, tmp_path):
    cfg = FitConfig.create("DisRNN", epochs=3, restarts=2, init="random")
    out = fit(ds, cfg, tmp_path / "r", seed=4, progress=False)
    info = json.loads((out / "fit_info.json").read_text())
    runs = info["restarts"]
    assert [r["restart"] for r in runs] == [0, 1] and runs[0]["seed"] == 4
    assert runs[1]["seed"] == training.restart_seed(4, 1) != 4
    best = min(runs, key=lambda r: r["objective"])
    assert info["restart"] == best["restart"]
    assert not list(tmp_path.glob(".*"))
    # one restart is the plain fit with the same seed
    one = fit(ds, FitConfig.create("DisRNN", epochs=3, init="random"), tmp_path / "o",
              seed=4, progress=False)  # fmt: skip
    again = fit(ds, dataclasses.replace(cfg, restarts=1), tmp_path / "a", seed=4, progress=False)
    assert _same_weights(one, again)


def test_rotation_init_pretrains_then_rotates(ds, tmp_path):
    out = fit(ds, FitConfig.create("DisRNN", epochs=4), tmp_path / "f", seed=0, progress=False)
    info = json.loads((out / "fit_info.json").read_text())
    assert info["pretrain"]["epochs_run"] == 4 and info["pretrain"]["rotation_pc"] >= -1
    assert json.loads((out / "config.json").read_text())["init"] == "rotation"


def test_training_after_the_rotation_runs_at_the_finetune_lr(tmp_path):
    """The full objective after the rotation init starts at lr x finetune_lr_scale (spike
    counts: 0.1 by default; continuous data: 1), the pre-fit at lr."""
    ds = toy_dataset(n_trials=24, n_time=30, kind="spike_counts")
    cfg = FitConfig.create("DisRNN", epochs=3, lr=0.02)
    assert cfg.resolve("spike_counts").finetune_lr_scale == 0.1
    assert cfg.resolve("continuous").finetune_lr_scale == 1.0
    for scale, want in ((None, 0.002), (0.5, 0.01)):
        c = dataclasses.replace(cfg, finetune_lr_scale=scale)
        out = fit(ds, c, tmp_path / f"f{scale}", seed=0, progress=False)
        lr = pd.read_csv(out / "losses.csv").query("epoch == 0")["lr"]
        assert np.allclose(lr, want), (scale, lr.tolist())
        assert json.loads((out / "config.json").read_text())["finetune_lr_scale"] == want / 0.02
    with pytest.raises(ValueError, match="finetune_lr_scale"):
        FitConfig.create("DisRNN", finetune_lr_scale=-1)


def test_training_after_the_rotation_stops_at_the_finetune_patience(tmp_path):
    """The full objective after the rotation init early-stops after ``finetune_patience``
    epochs without improvement (by kind: spike counts 3; continuous the fit's patience).
    At lr x 1e-9 the weights cannot change, so no epoch after the first improves: the
    phase runs exactly 1 + patience epochs."""
    assert FitConfig.create("DisRNN").resolve("spike_counts").finetune_patience == 3
    resolved = FitConfig.create("DisRNN", patience=7).resolve("continuous").resolve_steps(100)
    assert resolved.finetune_patience == 7
    for kind, ft_patience, want in (("spike_counts", 2, 3), ("continuous", None, 6)):
        ds = toy_dataset(n_trials=24, n_time=30, kind=kind)
        c = FitConfig.create(
            "DisRNN", epochs=20, patience=5, finetune_patience=ft_patience, finetune_lr_scale=1e-9
        )
        out = fit(ds, c, tmp_path / kind, seed=0, progress=False)
        info = json.loads((out / "fit_info.json").read_text())
        assert info["pretrain"]["epochs_run"] == 20
        assert (info["epochs_run"], info["stop_reason"]) == (want, "early_stopping"), kind
    with pytest.raises(ValueError, match="finetune_patience"):
        FitConfig.create("DisRNN", finetune_patience=0)


# ------------------------------------------------------------------- known input u_t
def test_zero_input_trains_exactly_like_no_input(ds, tmp_path):
    """Adding u = 0 changes no number: same weights, same predictions."""
    cfg = FitConfig.create("DisRNN", epochs=3)
    a = fit(ds, cfg, tmp_path / "a", seed=2, progress=False)
    ds0 = ds.assign(input=(("trial", "time", "unit"), np.zeros(ds["activity"].shape, "f4")))
    b = fit(ds0, cfg, tmp_path / "b", seed=2, progress=False)
    assert _same_weights(a, b)
    assert json.loads((a / "config.json").read_text())["input"] is False
    np.testing.assert_array_equal(load_fit(a).predict(ds).values, load_fit(b).predict(ds0).values)
    with pytest.raises(ValueError, match="trained without a known 'input'"):
        load_fit(a).predict(ds0)


def test_known_large_input_is_used(tmp_path):
    """Data driven by a large known input: the fit given it predicts held-out bins far better."""
    ds = toy_dataset(n_trials=24, n_time=30, seed=1)
    u = 3.0 * np.random.default_rng(9).normal(size=ds["activity"].shape)
    ds = ds.assign(
        activity=ds["activity"] + u.astype(np.float32),
        input=(("trial", "time", "unit"), u.astype(np.float32)),
    )
    cfg = FitConfig.create("lrRNN", epochs=15)
    f_in = load_fit(fit(ds, cfg, tmp_path / "in", progress=False))
    no_input = ds.drop_vars("input")
    f_out = load_fit(fit(no_input, cfg, tmp_path / "out", progress=False))
    test = ds.split == "test"
    nll_in = float(f_in.nll(ds.sel(trial=test)).mean())
    nll_out = float(f_out.nll(no_input.sel(trial=test)).mean())
    assert nll_in < nll_out - 1.0, (nll_in, nll_out)  # nats per bin and unit
    bad = ds.copy()
    bad["input"] = bad["input"].where(bad.trial != 0)  # NaN input
    with pytest.raises(ValueError, match="input holds NaN"):
        fit(bad, cfg, tmp_path / "bad", progress=False)
