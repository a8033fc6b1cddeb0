"""Seeds fitted together (``fit_seeds``): the same fits as lone ones, each resumable."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from helpers.datasets import toy_dataset

from disrnn.fit import fit, rotation
from disrnn.fit.config import FitConfig
from disrnn.fit.threads import stack_threads, threads_for
from disrnn.fit.train import fit_seeds

SEEDS = [0, 1, 2]


def _weights(path):
    return torch.load(path / "weights.pt", weights_only=True)


@pytest.fixture(scope="module")
def ds():
    return toy_dataset(n_trials=24, n_time=30)


@pytest.fixture(scope="module")
def lone(ds, tmp_path_factory):
    """Three lone DisRNN fits (rotation init: the pre-fit, the search, the PC phase), with
    torch at one thread (the tests below give it two)."""
    root = tmp_path_factory.mktemp("lone")
    cfg = FitConfig.create("DisRNN", epochs=8, patience=3, checkpoint_every=2)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return cfg, [fit(ds, cfg, root / f"seed{s}", seed=s, progress=False) for s in SEEDS]
    finally:
        torch.set_num_threads(before)


def _assert_same_fits(a_dirs, b_dirs, atol):
    for a, b in zip(a_dirs, b_dirs, strict=True):
        wa, wb = _weights(a), _weights(b)
        assert wa.keys() == wb.keys()
        for k in wa:
            np.testing.assert_allclose(wa[k].numpy(), wb[k].numpy(), atol=atol, rtol=0, err_msg=k)
        ia = json.loads((a / "fit_info.json").read_text())
        ib = json.loads((b / "fit_info.json").read_text())
        for key in ("epochs_run", "best_epoch", "stop_reason"):
            assert ia[key] == ib[key], key
        assert ia.get("pretrain") == ib.get("pretrain") or (
            ia["pretrain"]["epochs_run"] == ib["pretrain"]["epochs_run"]
        )
        la, lb = pd.read_csv(a / "losses.csv"), pd.read_csv(b / "losses.csv")
        assert la[["epoch", "split"]].equals(lb[["epoch", "split"]])
        np.testing.assert_allclose(la["total"], lb["total"], rtol=1e-4)


@pytest.fixture
def two_threads():
    """torch at 2 threads for the test, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_seeds_together_equal_lone_fits(ds, lone, tmp_path, two_threads):
    """Each seed of a batched fit is its lone fit, up to float rounding of the batched
    products (the arithmetic differs in summation order only, also on the stack's two
    threads against the lone fits' one; 1e-4 on weights of order 1 after ~30 AdamW steps
    and a rotation search)."""
    cfg, lone_dirs = lone
    dirs = fit_seeds(ds, cfg, [tmp_path / f"seed{s}" for s in SEEDS], SEEDS, progress=False)
    _assert_same_fits(lone_dirs, dirs, atol=1e-4)
    info = json.loads((dirs[1] / "fit_info.json").read_text())
    assert info["seeds_together"] == 3 and info["batch_seconds"] >= info["seconds"]
    assert info["torch_threads"] == 2 and torch.get_num_threads() == 2
    assert json.loads((dirs[2] / "config.json").read_text())["seed"] == 2
    # the seeds really differ (no seed's weights leaked into another's)
    assert not torch.equal(_weights(dirs[0])["A"], _weights(dirs[1])["A"])
    assert not list(tmp_path.glob(".*"))  # no checkpoint left behind


def test_one_seed_is_the_lone_fit_exactly(ds, lone, tmp_path, two_threads):
    """A fit of one seed runs on one thread whatever torch was given: the lone fit made
    on one thread, bit for bit."""
    cfg, lone_dirs = lone
    (out,) = fit_seeds(ds, cfg, [tmp_path / "seed1"], [1], progress=False)
    wa, wb = _weights(lone_dirs[1]), _weights(out)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert json.loads((out / "fit_info.json").read_text())["torch_threads"] == 1


def test_stack_threads_one_per_seed_up_to_torch():
    assert [stack_threads(s, 2) for s in (0, 1, 2, 3, 10)] == [1, 1, 2, 2, 2]
    assert stack_threads(3, 8) == 3


def test_threads_restored_after_the_block(two_threads):
    with pytest.raises(RuntimeError, match="inside"), threads_for(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
        raise RuntimeError("inside")
    assert torch.get_num_threads() == 2


def test_rotation_searches_use_one_thread_per_fit(monkeypatch, two_threads):
    seen = []
    monkeypatch.setattr(rotation, "_pc_rotations", lambda mus, *a: seen.append(
        torch.get_num_threads()) or [(torch.eye(2), 0.0)] * len(mus))  # fmt: skip
    g = [torch.Generator().manual_seed(s) for s in range(3)]
    mu = torch.randn(50, 2)
    rotation.pc_rotations([mu], [0.0], (1, 1), g[:1])
    rotation.pc_rotations([mu] * 3, [0.0] * 3, (1, 1), g)
    assert seen == [1, 2] and torch.get_num_threads() == 2


class _Killed(Exception):
    pass


def test_killed_batch_resumes_every_seed(ds, lone, tmp_path):
    """Killed in the PC phase, the batch resumes every seed from its own checkpoint and
    ends where an uninterrupted batch ends (the lone fits, to rounding)."""
    cfg, lone_dirs = lone
    dirs = [tmp_path / f"seed{s}" for s in SEEDS]
    calls = []

    def kill(epoch):
        calls.append(epoch)
        if len(calls) > 8 and epoch == 3:  # after the pre-fit's 8 epochs, in the PC phase
            raise _Killed

    with pytest.raises(_Killed):
        fit_seeds(ds, cfg, dirs, SEEDS, progress=False, on_epoch=kill)
    assert not any(d.exists() for d in dirs)
    ckpts = [tmp_path / f".seed{s}.checkpoint.pt" for s in SEEDS]
    assert all(c.exists() for c in ckpts)
    epochs = {torch.load(c, weights_only=True)["state"]["epoch"] for c in ckpts}
    assert epochs <= {2, 4}  # each seed's checkpoint of epoch 2 (or its early stop)
    fit_seeds(ds, cfg, dirs, SEEDS, progress=False)
    assert not list(tmp_path.glob(".*"))
    _assert_same_fits(lone_dirs, dirs, atol=1e-4)


def test_seeds_that_stop_at_different_epochs_leave_the_stack(ds, tmp_path):
    """A seed that stops early leaves the stack; the others go on from their own weights
    and AdamW moments and end where their lone fits end, also when the batch is killed
    after the first seed left and resumed."""
    cfg = FitConfig.create("lrRNN", epochs=200, patience=2, lr=0.05, checkpoint_every=2)
    seeds = [0, 1, 2, 3]
    lone = [fit(ds, cfg, tmp_path / f"lone{s}", seed=s, progress=False) for s in seeds]
    stops = [json.loads((d / "fit_info.json").read_text())["epochs_run"] for d in lone]
    assert len(set(stops)) == len(stops)  # every seed stops at its own epoch
    dirs = [tmp_path / f"seed{s}" for s in seeds]

    def kill(epoch):
        if epoch == min(stops) + 3:  # the first seed to stop has left the stack
            raise _Killed

    with pytest.raises(_Killed):
        fit_seeds(ds, cfg, dirs, seeds, progress=False, on_epoch=kill)
    fit_seeds(ds, cfg, dirs, seeds, progress=False)
    _assert_same_fits(lone, dirs, atol=1e-5)


def test_fit_seeds_errors(ds, tmp_path):
    cfg = FitConfig.create("lrRNN", epochs=2)
    with pytest.raises(ValueError, match="one out_dir and one init_from per seed"):
        fit_seeds(ds, cfg, [tmp_path / "a"], [0, 1], progress=False)
    with pytest.raises(ValueError, match="distinct seeds and folders"):
        fit_seeds(ds, cfg, [tmp_path / "a", tmp_path / "b"], [1, 1], progress=False)
    with pytest.raises(ValueError, match="distinct seeds and folders"):
        fit_seeds(ds, cfg, [tmp_path / "a", tmp_path / "a"], [0, 1], progress=False)


def test_posthoc_methods_fit_each_seed(ds, tmp_path):
    """Post-hoc methods take one lrRNN per seed; together they equal lone transforms."""
    cfg = FitConfig.create("LINT", epochs=3)
    dirs = fit_seeds(ds, cfg, [tmp_path / "s0", tmp_path / "s1"], [0, 1], progress=False)
    lone0 = fit(ds, cfg, tmp_path / "lone0", seed=0, progress=False)
    w, v = _weights(dirs[0]), _weights(lone0)
    assert all(torch.equal(w[k], v[k]) for k in w)


def test_an_epochs_draws_are_made_on_the_fit_device():
    """Each seed's draws of an epoch are stacked with the other seeds' and index the
    fit's tensors, so they must be on the fit's device. The meta device stands in for a
    GPU here: stacking it with a CPU tensor fails as CUDA does."""
    from disrnn.fit.loop import _draw_epoch

    dev = torch.device("meta")
    n_bins, m, n_batches, K, pc_m = 50, 8, 6, 3, 5
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    a, b = (_draw_epoch(n_bins, m, n_batches, K, pc_m, g, dev) for g in gens)
    for x, y in zip(a, b, strict=True):
        assert x.device == y.device == dev and (x.shape, x.dtype) == (y.shape, y.dtype)
        torch.stack([x, y], 1)
    assert _draw_epoch(n_bins, m, n_batches, K, None, gens[0], dev)[2:] == (None, None)
