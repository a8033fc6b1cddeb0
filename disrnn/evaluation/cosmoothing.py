"""Co-smoothing with the smoothing posterior of a fit (NLB co-bps from the whole trial).

The causal model defines W = A B and is left untouched. For co-smoothing only, a new
acausal encoder is learned in front of the fit's *fixed* decoder (A, a, link), so the
posterior latents live in the fit's own latent space and groups::

    f_t   = tanh(x^in_t)                                      (held-in unit,)
    z^s_t = b_s + sum_{l=-Lf..Lf} phi_{k,l} (B_s f_{t-l})_k   (latent,)
    r_t   = link(A z^s_t + a (+ u_t))                         (unit,) expected counts

phi = softmax over the 2 Lf + 1 lags (one kernel shared by all latents, or one per
latent), initialised as a mixture of a short and a wide symmetric exponential
(``INIT_TAU_SECONDS``, ``INIT_SHORT_WEIGHT``); B_s, b_s start at the fit's B, b. For a
linear encoder and decoder the encoder learns in the coordinates of the SVD of the fit's
W = A B over the held-in units (:func:`disrnn.models.smoothing.svd_basis`: z^s = T c,
c the encoder's output), so the posterior depends on the fit only through W, a and the
link: fits that differ only in how they split W into A and B (lrRNN, LINT, lrRNN+ICA of
one lrRNN) get the same co-bps. The sum runs over the bins of the trial
(``pre_activity`` bins before the window are prepended as extra past context, inputs
only); bins outside the trial or unobserved (``mask``, ``pre_mask``) are left out and the
kernel is renormalised over the rest (normalised convolution), so the trial's last bins
are not biased towards "no spikes".

No bin is ever predicted from itself: the loss only scores units the encoder did not
see. Held-out units are never seen; with coordinated dropout (``dropout`` = p) each
training trial also hides a random fraction p of held-in units from the input (zeroed,
the visible ones scaled by 1/(1-p)) and scores them too::

    loss = sum_{trial, t observed} sum_{u hidden} [r_tu - x_tu log r_tu] / n_bins

Training uses the train trials, early stopping the held-out-unit loss on the val trials.

Defaults, from the ALM session (000006 anm372904 2017-06-19, 20 ms bins, 16 of 66 units
held out, lrRNN rank 8, causal co-bps 0.232): loss on held-out units only gave co-bps
0.495 against 0.441 (p = 0.1) and 0.335 (p = 0.3) with coordinated dropout - the decoder
is fixed, so fitting hidden held-in units pulls z^s away from what the held-out rows of A
need (per-latent kernels: 0.516 held-out only, 0.364 with p = 0.3); per-latent
kernels 0.516 against 0.495 shared; init from the fit's B, b the same co-bps as random
(0.497, shared kernel) in 229 instead of 274 epochs; 21 s on 2 CPU threads.

    post = fit_smoothing_posterior(fit, ds, seed=0)
    post.predict(ds)                          # (trial, time, unit) expected counts
    cosmoothing_metrics(fit, post, ds)        # co_bps, co_bps_smoothed, ...
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time

import numpy as np
import torch
import xarray as xr

from disrnn.evaluation.inputs import null_rate
from disrnn.evaluation.metrics import bits_per_spike, poisson_loglik
from disrnn.evaluation.smoothing_config import LAG_SECONDS, SmoothingConfig, default_lags
from disrnn.evaluation.spike_smoothing import heldout_psth_r2
from disrnn.evaluation.steps import nlb_behavior_r2
from disrnn.fit.folder import check_input
from disrnn.fit.objective import nll_terms
from disrnn.fit.tensors import bin_width, dataset_kind, valid_bins
from disrnn.models.smoothing import SmoothingEncoder, svd_basis

__all__ = [
    "LAG_SECONDS",
    "SmoothingConfig",
    "default_lags",
    "SmoothingPosterior",
    "coordinated_dropout",
    "cosmoothing_metrics",
    "fit_smoothing_posterior",
]

_HELDOUT_FIX = "bin the session with held-out units, e.g. `disrnn bin --heldout-fraction 0.25`"


# ------------------------------------------------------------------------- pieces
def coordinated_dropout(n_trial: int, heldin: torch.Tensor, p: float, generator=None):
    """Input scale and loss mask of one training step.

    Per trial, round(p * n_in) random held-in units are hidden from the input and added
    to the loss; held-out units are never input and always in the loss.

    Args:
        n_trial: trials in the batch; heldin: (unit,) bool; p: fraction in [0, 1);
        generator: torch.Generator.
    Returns:
        scale: (trial, unit) float32 input multiplier, 0 for every unit in the loss,
        n_in / (n_in - n_hidden) for the visible held-in units; loss: (trial, unit) bool.
        ``scale > 0`` and ``loss`` are never both true.
    """
    heldin = heldin.bool()
    n_in = int(heldin.sum())
    k = min(int(round(p * n_in)), n_in - 1) if n_in > 1 else 0
    hide = torch.zeros(n_trial, heldin.numel(), dtype=torch.bool)
    if k > 0:
        cols = torch.nonzero(heldin).flatten()
        order = torch.rand(n_trial, n_in, generator=generator).argsort(dim=1)[:, :k]
        hide[torch.arange(n_trial)[:, None], cols[order]] = True
    loss = hide | ~heldin[None, :]
    scale = (~loss).float() * (n_in / max(n_in - k, 1))
    return scale, loss


# --------------------------------------------------------------------------- data
def _check(fit, ds: xr.Dataset) -> np.ndarray:
    """(unit,) bool held-out units; ValueError for a non-Poisson fit or dataset."""
    if getattr(fit.config, "likelihood", None) != "poisson":
        raise ValueError(
            "co-smoothing scores spike counts with a Poisson likelihood; this fit's "
            f"likelihood is {fit.config.likelihood!r} (fit with --likelihood poisson)"
        )
    if dataset_kind(ds) != "spike_counts":
        raise ValueError("co-smoothing needs spike counts; this dataset's activity is continuous")
    if ds.sizes.get("unit") != fit.module.n_units:
        raise ValueError(
            f"the dataset has {ds.sizes.get('unit')} units; the fit has {fit.module.n_units}"
        )
    check_input(fit.uses_input, "input" in ds, f"the fit {fit.path}")
    if "heldout" not in ds.coords or not np.asarray(ds["heldout"].values, bool).any():
        raise ValueError(f"the dataset has no held-out units; {_HELDOUT_FIX}")
    heldout = np.asarray(ds["heldout"].values, bool)
    if heldout.all():
        raise ValueError("every unit is held out; the encoder needs held-in units")
    seen = fit.module.input_mask.numpy().astype(bool)
    if (seen & heldout).any():
        raise ValueError(
            f"the fit's encoder saw {int((seen & heldout).sum())} of the dataset's held-out "
            "units; fit it on this dataset (its `heldout` coord hides them from the encoder)"
        )
    return heldout


def _tensors(ds: xr.Dataset) -> dict:
    """x: (trial, pre + time, unit) float32 with pre_activity prepended; obs: same
    (trial, pre + time) float32 observed; n_pre; target_ok: (trial, time) bool; u or None."""
    act = ds["activity"].transpose("trial", "time", "unit").values.astype(np.float32)
    mask = np.ones(act.shape[:2], bool)
    if "mask" in ds:
        mask = ds["mask"].transpose("trial", "time").values.astype(bool)
    x, obs = act, mask
    n_pre = 0
    if "pre_activity" in ds:
        pre = ds["pre_activity"].transpose("trial", "pre_time", "unit").values.astype(np.float32)
        pm = np.ones(pre.shape[:2], bool)
        if "pre_mask" in ds:
            pm = ds["pre_mask"].transpose("trial", "pre_time").values.astype(bool)
        x, obs, n_pre = np.concatenate([pre, act], 1), np.concatenate([pm, mask], 1), pre.shape[1]
    x = np.where(obs[..., None], x, 0.0).astype(np.float32)
    u = None
    if "input" in ds:
        u = torch.from_numpy(ds["input"].transpose("trial", "time", "unit").values.astype("f4"))
    return {
        "x": torch.from_numpy(x),
        "obs": torch.from_numpy(obs.astype(np.float32)),
        "n_pre": n_pre,
        "target": torch.from_numpy(act),
        "target_ok": torch.from_numpy(mask),
        "u": u,
    }


def _forward(encoder, decoder, data, idx, heldin, scale):
    """(z, eta) of trials ``idx`` on the window bins; scale: (trial, unit) input scale."""
    f = torch.tanh(data["x"][idx]) * scale[:, None, :]
    z = encoder(f[..., heldin], data["obs"][idx])[:, data["n_pre"] :]
    u = None if data["u"] is None else data["u"][idx]
    return z, decoder.decode(z, u)


def _loss(encoder, decoder, data, idx, heldin, scale, in_loss):
    """Poisson NLL per observed bin, summed over the units in ``in_loss`` (trial, unit)."""
    _, eta = _forward(encoder, decoder, data, idx, heldin, scale)
    nll = nll_terms(decoder, data["target"][idx], eta, constant=False)  # (trial, time, unit)
    ok = data["target_ok"][idx]
    w = ok[..., None] & in_loss[:, None, :]
    return (nll * w).sum() / ok.sum().clamp_min(1)


# ---------------------------------------------------------------------- posterior
class SmoothingPosterior:
    """A learned acausal encoder in front of a fit's frozen decoder.

    Attributes:
        encoder: :class:`SmoothingEncoder`; decoder: a frozen copy of ``fit.module`` (its
        A, a, link and known-input handling); heldout: (unit,) bool; units: (unit,) ids;
        latent_group: (latent,) int, the fit's; config: :class:`SmoothingConfig`;
        info: epochs_run, best_epoch, best_val_nll (nats per val bin, held-out units),
        seconds, seed, history (per epoch: epoch, train, val).
    """

    def __init__(self, encoder, decoder, heldout, units, latent_group, config, info):
        self.encoder = encoder.eval()
        self.decoder = decoder.eval()
        self.heldout = np.asarray(heldout, bool)
        self.units = np.asarray(units)
        self.latent_group = np.asarray(latent_group, int)
        self.config = config
        self.info = info

    def __repr__(self) -> str:
        c = self.config
        return f"SmoothingPosterior(lags={c.lags}, kernel={c.kernel}, dropout={c.dropout})"

    @property
    def A(self) -> np.ndarray:
        """(unit, latent) float64, the fit's decoder (unchanged)."""
        return self.decoder.A.detach().double().numpy()

    @torch.no_grad()
    def _run(self, ds: xr.Dataset):
        if ds.sizes.get("unit") != self.units.size:
            raise ValueError(
                f"the dataset has {ds.sizes.get('unit')} units; need {self.units.size}"
            )
        data = _tensors(ds)
        heldin = torch.from_numpy(~self.heldout)
        idx = torch.arange(ds.sizes["trial"])
        scale = heldin.float().expand(idx.numel(), -1)  # no dropout at prediction
        return _forward(self.encoder, self.decoder, data, idx, heldin, scale)

    def _da(self, values, ds, dim, coords) -> xr.DataArray:
        da = xr.DataArray(
            values,
            dims=("trial", "time", dim),
            coords={"trial": ds["trial"].values, "time": ds["time"].values, **coords},
        )
        for name in ("split", "condition"):
            if name in ds.coords and ds[name].dims == ("trial",):
                da = da.assign_coords({name: ("trial", ds[name].values)})
        return da

    def latents(self, ds: xr.Dataset) -> xr.DataArray:
        """Smoothing-posterior means z^s_t: (trial, time, latent) float64, every bin."""
        z, _ = self._run(ds)
        coords = {"latent": np.arange(z.shape[2]), "latent_group": ("latent", self.latent_group)}
        return self._da(z.double().numpy(), ds, "latent", coords)

    def predict(self, ds: xr.Dataset) -> xr.DataArray:
        """Expected counts per bin f(A z^s_t + a (+ u_t)): (trial, time, unit) float64, every
        window bin, every unit. Held-out units never see themselves; a held-in unit's
        prediction includes its own input (it is not a co-smoothing score)."""
        _, eta = self._run(ds)
        with torch.no_grad():
            rate = self.decoder.mean(eta).double().numpy()
        coords = {"unit": ds["unit"].values, "heldout": ("unit", self.heldout)}
        return self._da(rate, ds, "unit", coords)


def _initial(fit, heldin: np.ndarray, cfg: SmoothingConfig):
    """(B0, b0, basis) of the posterior encoder: the fit's encoder in the coordinates of
    ``cfg.basis`` (``svd_basis`` for a linear encoder and decoder) and ``cfg.init``."""
    m = fit.module
    linear = getattr(fit.config, "encoder", "linear") == "linear"
    with torch.no_grad():
        B_in = m.B.detach()[:, torch.from_numpy(heldin)] if linear else None
        svd = None
        if cfg.basis == "svd" and linear and getattr(fit.config, "decoder", "linear") == "linear":
            svd = svd_basis(m.A.detach(), B_in, m.b.detach())
    if svd is not None:
        T, B_c, b_c = svd
        return (B_c, b_c, T) if cfg.init == "fit" else (None, None, T)
    if cfg.init == "fit" and linear:
        return B_in, m.b.detach(), None
    return None, None, None


def fit_smoothing_posterior(fit, ds: xr.Dataset, seed: int = 0, **settings) -> SmoothingPosterior:
    """Learn the smoothing posterior of ``fit`` on ``ds`` (the fit stays unchanged).

    Args:
        fit: a Poisson Fit (:func:`disrnn.load_fit`), trained on ``ds``.
        ds: the binned dataset: ``activity`` (trial, time, unit) spike counts, ``split``
            (train / val / test trials), ``heldout`` (unit,) bool; optional ``mask``
            (trial, time), ``pre_activity`` (trial, pre_time, unit) with ``pre_mask``.
        seed: seeds the torch.Generator of batches, dropout and any random init.
        **settings: :class:`SmoothingConfig` fields (lags, epochs, lr, dropout, ...).
    Returns:
        :class:`SmoothingPosterior`, at the epoch with the lowest val held-out NLL.
    Raises:
        ValueError: a Gaussian fit or continuous data; no held-out units (bin with
        ``disrnn bin --heldout-fraction 0.25``); no train or val trials; bad settings.
    """
    cfg = SmoothingConfig(**settings)
    if cfg.lags is None:
        cfg = dataclasses.replace(cfg, lags=default_lags(bin_width(ds)))
    heldout = _check(fit, ds)
    split = np.asarray(ds["split"].values).astype(str) if "split" in ds.coords else None
    if split is None or not (split == "train").any() or not (split == "val").any():
        raise ValueError(
            "the smoothing posterior trains on train trials and stops early on val trials; "
            "the dataset needs both (e.g. `disrnn bin --split 0.6 0.2 0.2`)"
        )
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(int(seed))
    heldin = torch.from_numpy(~heldout)
    data = _tensors(ds)
    decoder = copy.deepcopy(fit.module).requires_grad_(False)
    B0, b0, basis = _initial(fit, ~heldout, cfg)
    bw = bin_width(ds)
    enc = SmoothingEncoder(
        int(heldin.sum()), decoder.rank, cfg.lags, cfg.kernel == "per-latent", B0, b0, gen,
        tau_short=cfg.tau_short / bw if bw else 1.0, short_weight=cfg.short_weight,
        basis=basis,
    )  # fmt: skip
    opt = torch.optim.AdamW(enc.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    train = torch.from_numpy(np.flatnonzero(split == "train"))
    val = torch.from_numpy(np.flatnonzero(split == "val"))
    val_scale, val_loss = heldin.float().expand(val.numel(), -1), ~heldin.expand(val.numel(), -1)
    best, best_state, best_epoch, history = math.inf, None, -1, []
    for epoch in range(cfg.epochs):
        enc.train()
        perm = train[torch.randperm(train.numel(), generator=gen)]
        total = 0.0
        for i in range(0, perm.numel(), cfg.batch_trials):
            idx = perm[i : i + cfg.batch_trials]
            scale, in_loss = coordinated_dropout(idx.numel(), heldin, cfg.dropout, gen)
            loss = _loss(enc, decoder, data, idx, heldin, scale, in_loss)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        enc.eval()
        with torch.no_grad():
            v = float(_loss(enc, decoder, data, val, heldin, val_scale, val_loss))
        history.append({"epoch": epoch, "train": total / train.numel(), "val": v})
        if v < best - 1e-5:
            best, best_epoch = v, epoch
            best_state = {k: t.detach().clone() for k, t in enc.state_dict().items()}
        elif epoch - best_epoch >= cfg.patience:
            break
    enc.load_state_dict(best_state)
    info = {
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "best_val_nll": best,
        "seconds": time.perf_counter() - t0,
        "seed": int(seed),
        "history": history,
    }
    return SmoothingPosterior(enc, decoder, heldout, ds["unit"].values, fit.latent_group, cfg, info)


# ------------------------------------------------------------------------ metrics
def cosmoothing_metrics(fit, post: SmoothingPosterior, ds: xr.Dataset) -> dict:
    """Co-bps of the causal fit and of its smoothing posterior, side by side.

    Scored on the test trials and held-out units with the evaluation's own rules
    (:func:`disrnn.evaluation.evaluate.compute_evaluation`): null rate = each unit's mean
    count per bin over the training trials' valid bins, :func:`bits_per_spike`.

    Returns:
        dict: ``co_bps`` (causal fit) and ``co_bps_smoothed`` on the causal fit's scored
        bins (t >= L with bins t-L..t observed); ``co_bps_smoothed_all_bins`` on every
        observed window bin (NLB's whole trial, same null); ``heldout_ll`` /
        ``heldout_ll_smoothed``: test log-likelihood in nats per bin, summed over the
        held-out units (log k! included), on the causal fit's bins; ``n_test_bins``,
        ``n_test_bins_all``, ``n_heldout``, ``history``.
    Raises:
        ValueError: as :func:`fit_smoothing_posterior` (Gaussian fit, no held-out units),
        or no test trials.
    """
    heldout = _check(fit, ds)
    split = np.asarray(ds["split"].values).astype(str)
    if not (split == "test").any():
        raise ValueError(f"the dataset has no test trials (splits: {sorted(set(split))})")
    L = int(fit.history)
    dt = ds.isel(trial=np.flatnonzero(split == "test"))
    train = split == "train"
    null = null_rate(ds.isel(trial=np.flatnonzero(train)) if train.any() else dt, L)[heldout]
    x = dt["activity"].transpose("trial", "time", "unit").values.astype(float)[..., heldout]
    causal = fit.predict(dt).transpose("trial", "time", "unit").values[..., heldout]
    smooth = post.predict(dt).transpose("trial", "time", "unit").values[..., heldout]
    ok = valid_bins(dt, L)  # (trial, time), the causal co-bps bins
    observed = valid_bins(dt, 0)  # every observed window bin

    def ll_per_bin(rate):
        return float(poisson_loglik(x[ok], rate[ok]).sum() / max(ok.sum(), 1))

    return {
        "co_bps": bits_per_spike(x, causal, null, ok[..., None]),
        "co_bps_smoothed": bits_per_spike(x, smooth, null, ok[..., None]),
        "co_bps_smoothed_all_bins": bits_per_spike(x, smooth, null, observed[..., None]),
        "heldout_ll": ll_per_bin(causal),
        "heldout_ll_smoothed": ll_per_bin(smooth),
        "n_test_bins": int(ok.sum()),
        "n_test_bins_all": int(observed.sum()),
        "n_heldout": int(heldout.sum()),
        "history": L,
    }


def smoothing_posterior_metrics(fit, ds: xr.Dataset, seed: int = 0, enabled: bool = True) -> dict:
    """The evaluation's smoothing-posterior keys of ``fit`` on ``ds`` (null where n/a).

    Fitted (when ``enabled``) for Poisson fits of spike counts with held-out units and
    train/val/test trials; every other fit gets ``None`` for each key (``co_bps_smoothed``,
    ``co_bps_smoothed_all_bins``, ``test_ll_heldout_smoothed_per_bin_neuron``,
    ``smoothing_posterior_seconds``, ``behavior_r2_nlb_smoothed``: NLB's decoding R^2 of
    each behavior variable from the posterior's rates of every unit, null without behavior,
    :func:`~disrnn.evaluation.steps.nlb_behavior_r2`; ``co_psth_r2_smoothed``: NLB's PSTH
    R^2 of its held-out rates, :func:`~disrnn.evaluation.spike_smoothing.heldout_psth_r2`).
    """
    keys = (
        "co_bps_smoothed",
        "co_bps_smoothed_all_bins",
        "test_ll_heldout_smoothed_per_bin_neuron",
        "smoothing_posterior_seconds",
        "behavior_r2_nlb_smoothed",
        "co_psth_r2_smoothed",
    )
    out = dict.fromkeys(keys)
    split = np.asarray(ds["split"].values).astype(str) if "split" in ds.coords else np.array([])
    heldout = np.asarray(ds["heldout"].values, bool) if "heldout" in ds.coords else np.zeros(1)
    config = getattr(fit, "config", None)
    usable = (
        enabled
        and getattr(config, "likelihood", None) == "poisson"
        and dataset_kind(ds) == "spike_counts"
        and heldout.any()
        and all((split == s).any() for s in ("train", "val", "test"))
    )
    if not usable:
        return out
    post = fit_smoothing_posterior(fit, ds, seed=seed)
    m = cosmoothing_metrics(fit, post, ds)
    out.update(
        co_bps_smoothed=m["co_bps_smoothed"],
        co_bps_smoothed_all_bins=m["co_bps_smoothed_all_bins"],
        test_ll_heldout_smoothed_per_bin_neuron=m["heldout_ll_smoothed"] / m["n_heldout"],
        smoothing_posterior_seconds=post.info["seconds"],
    )
    dtr, dt = (ds.isel(trial=np.flatnonzero(split == s)) for s in ("train", "test"))
    out["behavior_r2_nlb_smoothed"] = nlb_behavior_r2(post.predict, dtr, dt, int(fit.history))
    rates = post.predict(dt).transpose("trial", "time", "unit").values[..., heldout]
    out["co_psth_r2_smoothed"] = heldout_psth_r2(dt, rates, valid_bins(dt, int(fit.history)))
    return out
