"""Co-smoothing with the smoothing posterior of a fit (NLB co-bps from the whole trial).

The causal model defines W = A B and is left untouched. For co-smoothing only, a new
acausal encoder is learned in front of the fit's *fixed* decoder (A, a, link), so the
posterior latents live in the fit's own latent space and groups::

    f_t   = tanh(x^in_t)                                      (held-in unit,)
    z^s_t = b_s + sum_{l=-Lf..Lf} phi_{k,l} (B_s f_{t-l})_k   (latent,)
            + E [h>_t ; h<_t]      (a bidirectional GRU over the trial, ``CONTEXT_UNITS``,
                                    one step per ``CONTEXT_BIN_SECONDS``)
    r_t   = link(A z^s_t + a (+ u_t))                         (unit,) expected counts

For a linear decoder the held-out units' rows of A, a are by default trained with the
encoder, from the fit's (``SmoothingConfig.readout``, :class:`~disrnn.models.smoothing.
HeldoutReadout`): the fit trained them on its causal latents, and NLB's co-smoothing
fits a readout of held-out neurons on the training trials.

phi = softmax over the 2 Lf + 1 lags (one kernel shared by all latents, or one per
latent), initialised as a mixture of a short and a wide symmetric exponential
(``INIT_TAU_SECONDS``, ``INIT_SHORT_WEIGHT``); B_s, b_s start at the fit's B, b. For a
linear encoder and decoder the encoder learns in the coordinates of the SVD of the fit's
W = A B over the held-in units (:func:`disrnn.models.smoothing.svd_basis`: z^s = T (c + o),
c the encoder's output, o = T^-1 b the fit's bias as a fixed offset, b_s starting at 0),
so the posterior depends on the fit only through W, A b + a and the link: fits that
differ only in how they split W into A and B (lrRNN, LINT and lrRNN+ICA of one lrRNN)
get the same posterior, and their evaluations share one
(:mod:`disrnn.evaluation.posterior_metrics`). The sum runs over the bins of the trial
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

The dropout fraction is chosen per session from ``DROPOUTS`` by the val trials' held-out
NLL (one posterior each; ``smoothing_config`` has the measurements). The other defaults
come from the ALM session (000006 anm372904 2017-06-19, 20 ms bins, lrRNN rank 8), but
measured with a held-out unit whose spikes a held-in unit repeated (binning now drops
such twins, :mod:`disrnn.data.duplicates`): per-latent kernels 0.516 against 0.495
shared; init from the fit's B, b the same co-bps as random (0.497, shared kernel) in 229
instead of 274 epochs. Without the twin the kernel's start still matters on the small cut
and hardly on the whole session (``benchmarks/posterior_init.py``).

    post = fit_smoothing_posterior(fit, ds, seed=0)
    post.predict(ds)                          # (trial, time, unit) expected counts
    cosmoothing_metrics(fit, post, ds)        # co_bps, co_bps_smoothed, ...
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time

import numpy as np
import torch
import xarray as xr

from disrnn.evaluation.inputs import null_rate
from disrnn.evaluation.metrics import bits_per_spike, poisson_loglik
from disrnn.evaluation.posterior_data import (
    check_posterior_data,
    coordinated_dropout,
    posterior_tensors,
)
from disrnn.evaluation.smoothing_config import (
    LAG_SECONDS,
    SmoothingConfig,
    context_stride,
    default_lags,
)
from disrnn.fit.objective import nll_terms
from disrnn.fit.tensors import bin_width, valid_bins
from disrnn.models.smoothing import HeldoutReadout, SmoothingEncoder, svd_basis

log = logging.getLogger(__name__)
LOG_EVERY = 25  # epochs between the posterior training's progress lines (INFO)

__all__ = [
    "LAG_SECONDS",
    "SmoothingConfig",
    "default_lags",
    "SmoothingPosterior",
    "coordinated_dropout",
    "cosmoothing_metrics",
    "fit_smoothing_posterior",
]


def _forward(encoder, decoder, data, idx, heldin, scale, readout=None):
    """(z, eta) of trials ``idx`` on the window bins; scale: (trial, unit) input scale;
    readout: a :class:`HeldoutReadout` whose eta replaces the decoder's for the held-out
    units (None: the decoder's for every unit)."""
    f = torch.tanh(data["x"][idx]) * scale[:, None, :]
    c = encoder.coords(f[..., heldin], data["obs"][idx])[:, data["n_pre"] :]
    z = encoder.to_latents(c)
    u = None if data["u"] is None else data["u"][idx]
    eta = decoder.decode(z, u)
    if readout is not None:
        ho = torch.nonzero(~heldin).flatten()
        eta_ho = readout(c) + (0.0 if u is None else u[..., ho])
        eta = eta.index_copy(-1, ho, eta_ho)
    return z, eta


def _loss(encoder, decoder, data, idx, heldin, scale, in_loss, readout=None):
    """Poisson NLL per observed bin, summed over the units in ``in_loss`` (trial, unit)."""
    _, eta = _forward(encoder, decoder, data, idx, heldin, scale, readout)
    nll = nll_terms(decoder, data["target"][idx], eta, constant=False)  # (trial, time, unit)
    ok = data["target_ok"][idx]
    w = ok[..., None] & in_loss[:, None, :]
    return (nll * w).sum() / ok.sum().clamp_min(1)


# ---------------------------------------------------------------------- posterior
class SmoothingPosterior:
    """A learned acausal encoder in front of a fit's frozen decoder.

    Attributes:
        encoder: :class:`SmoothingEncoder`; decoder: a frozen copy of ``fit.module`` (its
        A, a, link and known-input handling); readout: the held-out units'
        :class:`HeldoutReadout` or None (``SmoothingConfig.readout``); heldout: (unit,)
        bool; units: (unit,) ids;
        latent_group: (latent,) int, the fit's; config: :class:`SmoothingConfig`;
        info: epochs_run, best_epoch, best_val_nll (nats per val bin, held-out units),
        seconds, seed, history (per epoch: epoch, train, val).
    """

    def __init__(self, encoder, decoder, heldout, units, latent_group, config, info, readout):
        self.encoder = encoder.eval()
        self.decoder = decoder.eval()
        self.readout = None if readout is None else readout.eval()
        self.heldout = np.asarray(heldout, bool)
        self.units = np.asarray(units)
        self.latent_group = np.asarray(latent_group, int)
        self.config = config
        self.info = info

    def __repr__(self) -> str:
        c = self.config
        return (
            f"SmoothingPosterior(lags={c.lags}, kernel={c.kernel}, dropout={c.dropout}, "
            f"readout={c.readout})"
        )

    @property
    def A(self) -> np.ndarray:
        """(unit, latent) float64, the fit's decoder (unchanged; with a refitted readout the
        held-out units are predicted by ``readout`` instead of their rows here)."""
        return self.decoder.A.detach().double().numpy()

    @torch.no_grad()
    def _run(self, ds: xr.Dataset):
        if ds.sizes.get("unit") != self.units.size:
            raise ValueError(
                f"the dataset has {ds.sizes.get('unit')} units; need {self.units.size}"
            )
        data = posterior_tensors(ds)
        heldin = torch.from_numpy(~self.heldout)
        idx = torch.arange(ds.sizes["trial"])
        scale = heldin.float().expand(idx.numel(), -1)  # no dropout at prediction
        return _forward(self.encoder, self.decoder, data, idx, heldin, scale, self.readout)

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
        """Expected counts per bin f(A z^s_t + a (+ u_t)) (held-out units: f(D c_t + d (+ u_t))
        with a refitted readout): (trial, time, unit) float64, every window bin, every unit. Held-out units never see themselves; a held-in unit's
        prediction includes its own input (it is not a co-smoothing score)."""
        _, eta = self._run(ds)
        with torch.no_grad():
            rate = self.decoder.mean(eta).double().numpy()
        coords = {"unit": ds["unit"].values, "heldout": ("unit", self.heldout)}
        return self._da(rate, ds, "unit", coords)


def _initial(fit, heldin: np.ndarray, cfg: SmoothingConfig):
    """(B0, b0, basis, offset) of the posterior encoder: the fit's encoder in the
    coordinates of ``cfg.basis`` (``svd_basis`` for a linear encoder and decoder) and
    ``cfg.init``. In the SVD coordinates the fit's bias b_c = T^-1 b is a fixed offset,
    z = T (c + b_c), and the trained bias b_s starts at 0: the predictions A T (c + b_c) + a
    = U_K S_K c + (A b + a) then depend on the fit only through W and A b + a, so LINT
    (which folds A b into a) gets its lrRNN's posterior too."""
    m = fit.module
    linear = getattr(fit.config, "encoder", "linear") == "linear"
    with torch.no_grad():
        B_in = m.B.detach()[:, torch.from_numpy(heldin)] if linear else None
        svd = None
        if cfg.basis == "svd" and linear and getattr(fit.config, "decoder", "linear") == "linear":
            svd = svd_basis(m.A.detach(), B_in, m.b.detach())
    if svd is not None:
        T, B_c, b_c = svd
        if cfg.init == "fit":
            return B_c, torch.zeros_like(b_c), T, b_c
        return None, None, T, None
    if cfg.init == "fit" and linear:
        return B_in, m.b.detach(), None, None
    return None, None, None, None


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
    heldout = check_posterior_data(fit, ds)
    split = np.asarray(ds["split"].values).astype(str) if "split" in ds.coords else None
    if split is None or not (split == "train").any() or not (split == "val").any():
        raise ValueError(
            "the smoothing posterior trains on train trials and stops early on val trials; "
            "the dataset needs both (e.g. `disrnn bin --split 0.6 0.2 0.2`)"
        )
    ps = cfg.dropout if isinstance(cfg.dropout, tuple) else (cfg.dropout,)
    t0, best, val = time.perf_counter(), None, {}
    data = posterior_tensors(ds)  # read once, shared by every candidate (not changed)
    for p in ps:  # one posterior per dropout fraction; the lowest val held-out NLL wins
        one = dataclasses.replace(cfg, dropout=p)
        post = _fit_one(fit, ds, data, one, heldout, split, seed)
        val[str(p)] = post.info["best_val_nll"]
        if best is None or post.info["best_val_nll"] < best.info["best_val_nll"]:
            best = post
    if len(ps) > 1:
        log.info("smoothing posterior: dropout %s chosen (val NLL %s)", best.config.dropout, val)
    best.info.update(seconds=time.perf_counter() - t0, dropout_val_nll=val)
    return best


def _fit_one(fit, ds, data, cfg: SmoothingConfig, heldout, split, seed) -> SmoothingPosterior:
    """One posterior with one dropout fraction (:func:`fit_smoothing_posterior`); data:
    :func:`~disrnn.evaluation.posterior_data.posterior_tensors` of ``ds``."""
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(int(seed))
    heldin = torch.from_numpy(~heldout)
    decoder = copy.deepcopy(fit.module).requires_grad_(False)
    B0, b0, basis, offset = _initial(fit, ~heldout, cfg)
    bw = bin_width(ds)
    enc = SmoothingEncoder(
        int(heldin.sum()), decoder.rank, cfg.lags, cfg.kernel == "per-latent", B0, b0, gen,
        tau_short=cfg.tau_short / bw if bw else 1.0, short_weight=cfg.short_weight,
        basis=basis, context=cfg.context, offset=offset,
        context_stride=context_stride(cfg.context_bin, bw),
    )  # fmt: skip
    readout = _readout(fit, heldout, basis, offset, cfg)
    best, best_epoch, history = _train(enc, readout, decoder, data, split, heldin, cfg, gen)
    info = {
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "best_val_nll": best,
        "seconds": time.perf_counter() - t0,
        "seed": int(seed),
        "history": history,
    }
    return SmoothingPosterior(
        enc, decoder, heldout, ds["unit"].values, fit.latent_group, cfg, info, readout
    )


def _train(enc, readout, decoder, data, split, heldin, cfg: SmoothingConfig, gen):
    """Train the encoder (and readout) on the train trials with AdamW (the readout without
    weight decay: a maximum-likelihood readout, not one shrunk towards 0), early-stopped
    on the val trials' held-out NLL; leaves the best epoch's weights in place.

    Returns:
        (best val NLL, best epoch, history: per epoch {epoch, train, val}).
    """
    groups = [{"params": list(enc.parameters())}]
    if readout is not None:
        groups.append({"params": list(readout.parameters()), "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    modules = torch.nn.ModuleDict(
        {"encoder": enc, **({} if readout is None else {"readout": readout})}
    )
    train = torch.from_numpy(np.flatnonzero(split == "train"))
    val = torch.from_numpy(np.flatnonzero(split == "val"))
    val_scale, val_loss = heldin.float().expand(val.numel(), -1), ~heldin.expand(val.numel(), -1)
    best, best_state, best_epoch, history = math.inf, None, -1, []
    for epoch in range(cfg.epochs):
        modules.train()
        perm = train[torch.randperm(train.numel(), generator=gen)]
        total = 0.0
        for i in range(0, perm.numel(), cfg.batch_trials):
            idx = perm[i : i + cfg.batch_trials]
            scale, in_loss = coordinated_dropout(idx.numel(), heldin, cfg.dropout, gen)
            loss = _loss(enc, decoder, data, idx, heldin, scale, in_loss, readout)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        modules.eval()
        with torch.no_grad():
            v = float(_loss(enc, decoder, data, val, heldin, val_scale, val_loss, readout))
        history.append({"epoch": epoch, "train": total / train.numel(), "val": v})
        if epoch % LOG_EVERY == 0:
            log.info("smoothing posterior epoch %d/%d: val held-out NLL %.5f", epoch, cfg.epochs, v)
        if v < best - 1e-5:
            best, best_epoch = v, epoch
            best_state = {k: t.detach().clone() for k, t in modules.state_dict().items()}
        elif epoch - best_epoch >= cfg.patience:
            break
    modules.load_state_dict(best_state)
    log.info(
        "smoothing posterior: best val NLL %.5f at epoch %d of %d", best, best_epoch, epoch + 1
    )
    return best, best_epoch, history


def _readout(fit, heldout: np.ndarray, basis, offset, cfg: SmoothingConfig):
    """The held-out units' :class:`HeldoutReadout` from the fit's decoder rows (in the
    encoder's coordinates ``basis``, ``offset``), or None: ``readout="fixed"`` or an MLP
    decoder."""
    if cfg.readout != "refit" or getattr(fit.config, "decoder", "linear") != "linear":
        return None
    ho = torch.from_numpy(heldout)
    return HeldoutReadout(fit.module.A.detach()[ho], fit.module.a.detach()[ho], basis, offset)


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
    heldout = check_posterior_data(fit, ds)
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
