"""The paper's generator: its gradients and optimiser against torch, and the truth it writes."""

import numpy as np
import pytest
import torch

from disrnn.data.binning import BinConfig, bin_session
from disrnn.simulate import PRESETS, paper, read_truth, simulate, write_nwb
from disrnn.simulate.systems import integrate_rk4, lorenz, thomas, zscore

FAST = {"train_steps": 300}  # the truth's layout does not depend on how long it trained


def _toy(n_pairs=60, n_units=7, n_latents=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    flat = paper.init_flat(n_units, n_latents, g)
    prev = torch.randn(n_pairs, n_latents, generator=g)
    nxt = torch.randn(n_pairs, n_latents, generator=g)
    u = 0.3 * torch.randn(n_pairs, n_units, generator=g)
    return flat, prev, nxt, u, paper._shapes(n_units, n_latents)


def test_gradients_match_autograd():
    flat, prev, nxt, u, shapes = _toy()
    grad = torch.zeros_like(flat)
    loss = paper.mse_gradients(paper._views(flat, shapes), paper._views(grad, shapes), prev, nxt, u)
    x = flat.clone().requires_grad_(True)
    p = paper._views(x, shapes)
    pred = (torch.tanh(prev @ p["A"].T + p["a"]) + u) @ p["B"].T + p["b"]
    ref = ((pred - nxt) ** 2).mean()
    ref.backward()
    torch.testing.assert_close(loss, ref.detach())
    torch.testing.assert_close(grad, x.grad, rtol=1e-5, atol=1e-7)


def test_adamw_step_matches_torch_adamw():
    flat, prev, nxt, u, shapes = _toy(seed=1)
    ours = flat.clone()
    grad, m, v = torch.zeros_like(flat), torch.zeros_like(flat), torch.zeros_like(flat)
    ref = torch.nn.Parameter(flat.clone())
    opt = torch.optim.AdamW([ref], lr=paper.LR, weight_decay=paper.WEIGHT_DECAY, foreach=False)
    for step in range(1, 31):
        paper.mse_gradients(paper._views(ours, shapes), paper._views(grad, shapes), prev, nxt, u)
        paper.adamw_step(ours, grad, m, v, step)
        opt.zero_grad()
        p = paper._views(ref, shapes)
        pred = (torch.tanh(prev @ p["A"].T + p["a"]) + u) @ p["B"].T + p["b"]
        ((pred - nxt) ** 2).mean().backward()
        opt.step()
    torch.testing.assert_close(ours, ref.detach(), rtol=1e-5, atol=1e-6)


def test_init_is_nn_linear_default():
    n_units, n_latents = 50, 6
    flat = paper.init_flat(n_units, n_latents, torch.Generator().manual_seed(0))
    p = paper._views(flat, paper._shapes(n_units, n_latents))
    for name, fan_in in (("A", n_latents), ("a", n_latents), ("B", n_units), ("b", n_units)):
        bound = 1 / np.sqrt(fan_in)
        assert p[name].abs().max() <= bound, name
        assert p[name].abs().max() > 0.8 * bound, name  # uniform on the whole interval
    assert flat.numel() == 2 * n_units * n_latents + n_units + n_latents


def test_train_network_reproduces_latents_and_is_seeded():
    lz = integrate_rk4(lorenz, np.ones(3), 0.1, 599)
    z = zscore(lz)
    pairs = np.arange(len(z) - 1)
    a = paper.train_network(z, pairs, 12, np.random.default_rng(3), steps=1500)
    b = paper.train_network(z, pairs, 12, np.random.default_rng(3), steps=1500)
    c = paper.train_network(z, pairs, 12, np.random.default_rng(4), steps=1500)
    for f in ("A", "a", "B", "b"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    assert not np.allclose(a.A, c.A)
    # one step of the RNN reproduces the next latent (a linear map z_{t-1} -> z_t gives
    # R^2 0.80 here at dt 0.1, so the tanh layer is doing the work)
    coef, *_ = np.linalg.lstsq(np.c_[z[:-1], np.ones(len(z) - 1)], z[1:], rcond=None)
    resid = z[1:] - np.c_[z[:-1], np.ones(len(z) - 1)] @ coef
    linear_r2 = 1 - (resid**2).sum() / ((z[1:] - z[1:].mean(0)) ** 2).sum()
    assert a.r2 > 0.98 > linear_r2 + 0.1
    pred = np.tanh(z[:-1] @ a.A.T + a.a) @ a.B.T + a.b
    r2 = 1 - ((z[1:] - pred) ** 2).sum() / ((z[1:] - z[1:].mean(0)) ** 2).sum()
    assert r2 == pytest.approx(a.r2)


def test_train_network_rejects_no_pairs():
    with pytest.raises(ValueError, match="pairs"):
        paper.train_network(np.zeros((5, 2)), np.array([], int), 4, np.random.default_rng(0))


# ------------------------------------------------------------------------- the presets
@pytest.mark.parametrize("name", ["paper-gaussian", "paper-poisson"])
def test_paper_presets_follow_the_papers_recipe(name):
    cfg = PRESETS[name]
    assert cfg.network == "trained" and cfg.train_steps == paper.TRAIN_STEPS == 10_000
    assert cfg.systems == ("lorenz", "thomas_b0") and cfg.dt == (0.1, 0.1)
    assert cfg.initial == ((1, 1, 1), (0.1, 1, 1)) and cfg.burn_in == 0 and cfg.iti == 0
    s = simulate(name, seed=0, n_trials=4, n_units=10, **FAST)
    n_bins = 4 * cfg.trial_length
    # the latents: RK4 at dt 0.1 from the paper's starts, each dimension z-scored
    ref_l = integrate_rk4(lorenz, np.ones(3), 0.1, n_bins - 1)
    ref_t = integrate_rk4(lambda x: thomas(x, b=0.0), np.array([0.1, 1, 1]), 0.1, n_bins - 1)
    expected = np.hstack([zscore(ref_l), zscore(ref_t)]).reshape(4, cfg.trial_length, 6)
    np.testing.assert_allclose(s.latents, expected, atol=1e-12)
    eta = s.latents @ s.A.T + s.bias
    np.testing.assert_allclose(s.rates, eta if s.kind == "continuous" else np.log1p(np.exp(eta)))
    # the truth's B is the trained encoder; its R^2 is that of the RNN on the latents
    flat = s.latents.reshape(-1, 6)
    pred = np.tanh(flat[:-1] @ s.A.T + s.bias) @ s.B.T + s.encoder_bias
    r2 = 1 - ((flat[1:] - pred) ** 2).sum() / ((flat[1:] - flat[1:].mean(0)) ** 2).sum()
    assert r2 == pytest.approx(s.encoder_r2)


def test_paper_gaussian_network_reproduces_the_latents():
    """The full recipe (10,000 steps, 2000 bins, 20 units): the RNN's one-step R^2 on the
    latents is 0.9996 for seeds 0-2; through the observed (noisy) x it is 0.95-0.96."""
    s = simulate("paper-gaussian", seed=1)
    assert s.activity.shape == (20, 100, 20)
    assert s.encoder_r2 > 0.999
    x, z = s.activity.reshape(-1, 20), s.latents.reshape(-1, 6)
    pred = np.tanh(x[:-1]) @ s.B.T + s.encoder_bias
    r2 = 1 - ((z[1:] - pred) ** 2).sum() / ((z[1:] - z[1:].mean(0)) ** 2).sum()
    assert 0.93 < r2 < s.encoder_r2
    assert abs((s.activity - s.rates).std() - 0.1) < 0.005


@pytest.mark.parametrize("name", ["paper-gaussian", "paper-poisson"])
def test_trained_truth_round_trips_through_nwb(tmp_path, name):
    s = simulate(name, seed=2, n_trials=5, n_units=9, **FAST)
    path = write_nwb(s, tmp_path / f"{name}.nwb")
    truth = read_truth(path)
    for f in ("latents", "rates", "A", "B", "bias", "latent_group", "behavior"):
        np.testing.assert_allclose(truth[f], getattr(s, f), rtol=1e-12, atol=1e-12, err_msg=f)
    assert truth["systems"] == ["lorenz", "thomas_b0"]
    assert truth["kind"] == s.kind
    continuous = s.kind == "continuous"
    config = BinConfig(
        bin_width=s.bin_width, activity="continuous_activity" if continuous else None
    )
    ds = bin_session(path, config)
    np.testing.assert_array_equal(ds["true_A"].values, s.A)
    np.testing.assert_array_equal(ds["true_B"].values, s.B)
    np.testing.assert_array_equal(ds["true_bias"].values, s.bias)
    np.testing.assert_array_equal(ds["true_latents"].values, s.latents)
    np.testing.assert_allclose(ds["true_rates"].values, s.rates, rtol=1e-12, atol=1e-12)
    if continuous:
        np.testing.assert_array_equal(ds["activity"].values, s.activity.astype(np.float32))
    else:
        np.testing.assert_array_equal(ds["activity"].values, s.activity)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"network": "learned"}, "network"),
        ({"train_steps": 0}, "train_steps"),
        ({"initial": ((1, 1), (0, 1, 1))}, "initial"),
        ({"initial": ((1, 1, 1),)}, "initial"),
        ({"initial": ((1, 1, np.nan), (0, 1, 1))}, "initial"),
        ({"initial": 3.0}, "initial"),
    ],
)
def test_bad_generator_fields(override, match):
    with pytest.raises(ValueError, match=match):
        simulate("paper-gaussian", **override)
