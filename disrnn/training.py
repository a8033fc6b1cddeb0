"""The one training loop of every method: ``fit(...)`` and ``load_fit(...)``.

    fit(dataset, FitConfig.create(method="DisRNN"), "results/fits/x/seed0", seed=0)
    f = load_fit("results/fits/x/seed0"); f.latents(ds); f.predict(ds); f.rollout(ds, 50)

Training data: the bins of the ``train`` trials, flattened to (bin, unit) with their
history features h_t precomputed on the device; early stopping on the ``val`` trials.
A fit folder holds ``config.json``, ``losses.csv``, ``fit_info.json`` and ``weights.pt``;
it is written atomically (complete or absent). While training, a checkpoint lives beside
it as ``.<folder name>.checkpoint.pt``; ``fit`` on the same folder, config, seed and data
resumes from it and gives the same result as an uninterrupted run.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from disrnn._atomic import atomic_dir, atomic_file
from disrnn.losses import (
    gaussian_nll,
    kl_standard_normal,
    offblock_penalty,
    partial_correlation,
    poisson_nll,
)
from disrnn.models.config import FitConfig
from disrnn.models.methods import POSTHOC_METHODS, ica_transform, lint_transform
from disrnn.models.modules import DisRNN, fixed_kernel

__all__ = ["fit", "load_fit", "Fit", "TERMS", "DivergenceError"]

log = logging.getLogger(__name__)

#: test hook: called as _epoch_callback(epoch) after each finished (and checkpointed) epoch
_epoch_callback = None


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite."""


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cpu``; ``cuda``.

    Raises:
        ValueError: unknown device, or ``cuda`` without a CUDA device.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or str(device).startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but torch sees no CUDA device; use 'cpu'")
        return torch.device(device)
    raise ValueError(f"unknown device {device!r}; valid: 'auto', 'cpu', 'cuda'")


# ----------------------------------------------------------------------------- data
TERMS = ("total", "nll", "kl", "pc", "bd")


@dataclasses.dataclass
class FitData:
    """Bins of one split, flattened, on the device.

    h: (bin, unit) history features (fixed kernel) or (bin, L, unit) tanh of the L
    previous bins (learned kernel); x: (bin, unit) float32 targets.
    """

    h: torch.Tensor
    x: torch.Tensor
    units: np.ndarray
    input_mask: torch.Tensor | None = None  # (unit,) bool, False for held-out units

    @property
    def n_bins(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_units(self) -> int:
        return int(self.x.shape[1])

    def to(self, device) -> FitData:
        return FitData(self.h.to(device), self.x.to(device), self.units, self.input_mask)


def load_input(dataset) -> tuple[xr.Dataset, dict]:
    """(Dataset, provenance dict) from a Dataset or a path.

    Raises:
        FileNotFoundError: missing path; ValueError: no ``activity`` or wrong dims.
    """
    source: dict = {"path": None, "sha256": None}
    if isinstance(dataset, str | os.PathLike):
        from disrnn.data.io import load_dataset

        path = Path(dataset)
        ds = load_dataset(path)
        source = {"path": str(path), "sha256": file_sha256(path)}
    elif isinstance(dataset, xr.Dataset):
        ds = dataset
        source["sha256"] = ds.attrs.get("sha256") or None
    else:
        raise TypeError(f"dataset must be an xarray.Dataset or a path, got {type(dataset)}")
    if "activity" not in ds:
        raise ValueError("the dataset has no 'activity' variable; build it with `disrnn bin`")
    if tuple(ds["activity"].dims) != ("trial", "time", "unit"):
        raise ValueError(
            f"activity must have dims ('trial', 'time', 'unit'), got {ds['activity'].dims}"
        )
    act = np.ascontiguousarray(ds["activity"].values)
    if not np.all(np.isfinite(act)):
        raise ValueError("activity holds NaN or inf values; mask those bins instead")
    source["activity_sha256"] = hashlib.sha256(act.tobytes()).hexdigest()
    return ds, source


def dataset_kind(ds: xr.Dataset) -> str:
    """``spike_counts`` or ``continuous``: activity.attrs/attrs ``kind``, else by dtype."""
    kind = ds["activity"].attrs.get("kind") or ds.attrs.get("kind")
    if kind in ("spike_counts", "continuous"):
        return kind
    if kind:
        raise ValueError(f"unknown activity kind {kind!r}; valid: 'spike_counts', 'continuous'")
    return "spike_counts" if np.issubdtype(ds["activity"].dtype, np.integer) else "continuous"


def trial_arrays(ds: xr.Dataset, history: int) -> dict[str, np.ndarray]:
    """Per-trial history stacks and targets of every trial.

    Returns:
        lagged: (trial, time - L, L, unit) float32 tanh(x_{t-l}), l = 1..L;
        x: (trial, time - L, unit) float32 targets (bins L.. of each trial);
        valid: (trial, time - L) bool, target and its L history bins unmasked.
    Raises:
        ValueError: trials not longer than L bins.
    """
    act = ds["activity"].values.astype(np.float32)  # (trial, time, unit)
    n_trial, n_time, _ = act.shape
    if n_time <= history:
        raise ValueError(f"trials have {n_time} bins; history={history} needs more")
    th = np.tanh(act)
    lagged = np.stack(
        [th[:, history - lag : n_time - lag] for lag in range(1, history + 1)], axis=2
    )
    valid = np.ones((n_trial, n_time - history), dtype=bool)
    if "mask" in ds:
        mask = ds["mask"].transpose("trial", "time").values.astype(bool)
        for lag in range(0, history + 1):
            valid &= mask[:, history - lag : n_time - lag]
    return {"lagged": lagged, "x": act[:, history:], "valid": valid}


def prepare(
    ds: xr.Dataset, history: int, split: str, device, learned_kernel: bool = False
) -> FitData:
    """The valid bins of the trials with ``split == split``, flattened, on ``device``.

    Without a ``split`` coordinate every trial counts as ``train``.
    """
    arrays = trial_arrays(ds, history)
    if "split" in ds.coords:
        trials = np.asarray(ds["split"].values).astype(str) == split
    else:
        trials = np.full(ds.sizes["trial"], split == "train")
    sel = arrays["valid"] & trials[:, None]  # (trial, time - L)
    lagged = torch.from_numpy(arrays["lagged"][sel])  # (bin, L, unit)
    x = torch.from_numpy(np.ascontiguousarray(arrays["x"][sel]))  # (bin, unit)
    if learned_kernel and history > 1:
        h = lagged
    else:
        h = torch.einsum("l,bln->bn", fixed_kernel(history), lagged)
    units = np.asarray(ds["unit"].values)
    input_mask = None
    if "heldout" in ds.coords:
        input_mask = torch.from_numpy(~np.asarray(ds["heldout"].values).astype(bool))
        if not bool(input_mask.any()):
            raise ValueError("every unit is marked heldout; the encoder needs held-in units")
    return FitData(h.contiguous().to(device), x.to(device), units, input_mask)


def nll_terms(module: DisRNN, x: torch.Tensor, eta: torch.Tensor, constant: bool = True):
    """(..., unit) elementwise negative log-likelihood of the module's observation model."""
    if module.likelihood == "gaussian":
        return gaussian_nll(x, eta, module.log_s)
    return poisson_nll(x, eta, module.link, constant=constant)


def build_module(config: FitConfig, data: FitData, generator: torch.Generator) -> DisRNN:
    """A freshly initialised network for ``config`` on ``data``'s units.

    sigma_q starts at N_tot^(-1/(K+4)), N_tot = data.n_bins; held-out units (when the
    dataset marked them) are hidden from the encoder via ``input_mask``.
    """
    K = config.rank
    return DisRNN(
        n_units=data.n_units,
        groups=config.groups,
        likelihood=config.likelihood,
        link=config.link,
        history=config.history,
        learned_kernel=config.kernel == "learned",
        log_sigma=-math.log(max(data.n_bins, 2)) / (K + 4),
        learned_sigma=config.sigma == "learned",
        encoder=config.encoder,
        decoder=config.decoder,
        hidden=config.hidden,
        input_mask=getattr(data, "input_mask", None),
        generator=generator,
    )


# ------------------------------------------------------------------------- the loss
def loss_terms(
    module: DisRNN,
    h: torch.Tensor,
    x: torch.Tensor,
    eps: torch.Tensor,
    n_total: int,
    beta: float,
    alpha: float,
) -> torch.Tensor:
    """Loss terms of one mini-batch, stacked as (total, nll, kl, pc, bd).

    total = mean_i [sum_n NLL(x_in | z_i) + KL_i] + beta PC + alpha BD, z_i = mu_i + sigma eps_i.

    Args:
        h: (batch, unit) history features; x: (batch, unit) targets;
        eps: (batch, latent) standard normal noise; n_total: training bins N_tot;
        beta, alpha: weights of PC and BD (BD only for a linear encoder and decoder).
    """
    if h.dim() == 3:  # learned kernel: (batch, L, unit) -> (batch, unit)
        h = module.kernel(h)
    mu = module.encode(h)
    log_sigma = module.log_sigma
    z = mu + torch.exp(log_sigma) * eps
    eta = module.decode(z)
    nll = nll_terms(module, x, eta, constant=False).sum(-1).mean()
    kl = kl_standard_normal(mu, log_sigma).mean()
    zero = nll.new_zeros(())
    pc = partial_correlation(z, mu, log_sigma, module.groups, n_total) if beta > 0 else zero
    linear = module.encoder_kind == "linear" and module.decoder_kind == "linear"
    bd = offblock_penalty(module.B @ module.A, module.groups) if alpha > 0 and linear else zero
    total = nll + kl + beta * pc + alpha * bd
    return torch.stack([total, nll, kl, pc, bd])


@torch.no_grad()
def _evaluate(
    module, data: FitData, eps: torch.Tensor, n_total: int, config, beta: float, alpha: float
) -> torch.Tensor:
    """Mean loss terms over ``data`` in chunks of the batch size (fixed noise ``eps``)."""
    m = config.batch_size
    n = data.n_bins
    out = torch.zeros(len(TERMS), device=data.h.device)
    weight = 0
    for start in range(0, n, m):
        stop = min(start + m, n)
        if stop - start < 2:
            continue
        terms = loss_terms(
            module, data.h[start:stop], data.x[start:stop], eps[start:stop], n_total, beta, alpha
        )
        out += terms * (stop - start)
        weight += stop - start
    return out / max(weight, 1)


def _lr_at(config: FitConfig, epoch: int) -> float:
    if config.schedule == "constant":
        return config.lr
    frac = epoch / max(config.epochs - 1, 1)
    return config.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac)))


def _warmup_epochs(config: FitConfig) -> int:
    return int(math.ceil(config.warmup * config.epochs))


def _penalty_scale(config: FitConfig, epoch: int) -> float:
    """Linear ramp of beta and alpha from 0 over the first ``warmup`` fraction of epochs."""
    warm = _warmup_epochs(config)
    return 1.0 if warm == 0 else min(1.0, (epoch + 1) / warm)


def _check_finite(values: torch.Tensor, epoch: int, split: str) -> None:
    bad = [name for name, v in zip(TERMS, values.tolist(), strict=True) if not math.isfinite(v)]
    if bad:
        term = [b for b in bad if b != "total"] or ["total"]
        raise DivergenceError(
            f"the loss diverged at epoch {epoch} ({split}): non-finite {', '.join(term)} "
            f"term; try a smaller lr, smaller beta/alpha, or check the data for extreme values"
        )


def _train(
    module: DisRNN,
    train: FitData,
    val: FitData | None,
    config: FitConfig,
    generator: torch.Generator,
    seed: int,
    ckpt: Path | None,
    fingerprint: dict,
    progress: bool,
) -> tuple[list[dict], dict]:
    """Run the loop; returns (loss history rows, info). Restores the best weights."""
    device = train.h.device
    K = module.rank
    opt = torch.optim.AdamW(
        module.parameters(), lr=config.lr, weight_decay=config.weight_decay, foreach=True
    )
    val_gen = torch.Generator().manual_seed(seed + 7919)
    val_eps = None
    if val is not None:
        val_eps = torch.randn(val.n_bins, K, generator=val_gen).to(device)
    history: list[dict] = []
    state = {"epoch": 0, "best": math.inf, "best_epoch": -1, "bad": 0, "best_state": None}
    elapsed_before = 0.0
    if ckpt is not None and ckpt.exists():
        saved = torch.load(ckpt, weights_only=False, map_location=device)
        if saved.get("fingerprint") == fingerprint:
            module.load_state_dict(saved["module"])
            opt.load_state_dict(saved["optimizer"])
            generator.set_state(saved["generator"])
            history = saved["history"]
            state = saved["state"]
            elapsed_before = saved.get("elapsed", 0.0)
            log.info("resuming from %s at epoch %d", ckpt, state["epoch"])
        else:
            log.warning("ignoring checkpoint %s of a different config or dataset", ckpt)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        # small dense ops: one thread is much faster than two contending ones
        torch.set_num_threads(1)
    try:
        return _loop(
            module, train, val, config, generator, ckpt, fingerprint, progress,
            opt, val_eps, history, state, elapsed_before,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)


def _loop(
    module, train, val, config, generator, ckpt, fingerprint, progress,
    opt, val_eps, history, state, elapsed_before,
):  # fmt: skip
    from tqdm.auto import tqdm

    device = train.h.device
    n, m = train.n_bins, min(config.batch_size, train.n_bins)
    n_batches = max(n // m, 1)
    K = module.rank
    t0 = time.perf_counter()
    stop_reason = "max_epochs"
    bar = tqdm(
        total=config.epochs, initial=state["epoch"], disable=not progress, desc=config.method
    )
    for epoch in range(state["epoch"], config.epochs):
        if state["bad"] >= config.patience:
            stop_reason = "early_stopping"
            break
        lr = _lr_at(config, epoch)
        scale = _penalty_scale(config, epoch)
        beta, alpha = config.beta * scale, config.alpha * scale
        for group in opt.param_groups:
            group["lr"] = lr
        module.train()
        perm = torch.randperm(n, generator=generator)[: n_batches * m].to(device)
        perm = perm.view(n_batches, m)
        eps = torch.randn(n_batches, m, K, generator=generator).to(device)
        sums = torch.zeros(len(TERMS), device=device)
        for k in range(n_batches):
            idx = perm[k]
            terms = loss_terms(module, train.h[idx], train.x[idx], eps[k], n, beta, alpha)
            opt.zero_grad(set_to_none=True)
            terms[0].backward()
            opt.step()
            sums += terms.detach()
        train_terms = (sums / n_batches).cpu()  # one host sync per epoch
        _check_finite(train_terms, epoch, "train")
        row = {"epoch": epoch, "lr": lr, "beta": beta, "alpha": alpha}
        history.append({**row, "split": "train", **_row(train_terms)})
        module.eval()
        if val is not None:
            val_terms = _evaluate(module, val, val_eps, val.n_bins, config, beta, alpha).cpu()
            _check_finite(val_terms, epoch, "val")
            history.append({**row, "split": "val", **_row(val_terms)})
            score = float(val_terms[0])
        else:
            score = float(train_terms[0])
        if epoch + 1 < _warmup_epochs(config):
            pass  # the objective still changes: no best model or patience yet
        elif score < state["best"]:
            state.update(best=score, best_epoch=epoch, bad=0)
            state["best_state"] = copy.deepcopy(module.state_dict())
        else:
            state["bad"] += 1
        state["epoch"] = epoch + 1
        bar.update(1)
        bar.set_postfix(loss=f"{score:.4g}", refresh=False)
        if ckpt is not None and (epoch + 1) % config.checkpoint_every == 0:
            _save_checkpoint(
                ckpt, module, opt, generator, history, state, fingerprint,
                elapsed_before + time.perf_counter() - t0,
            )  # fmt: skip
        if _epoch_callback is not None:
            _epoch_callback(epoch)
    bar.close()
    if state["bad"] >= config.patience and stop_reason != "early_stopping":
        stop_reason = "early_stopping"
    if state["best_state"] is not None:
        module.load_state_dict(state["best_state"])
    info = {
        "epochs_run": state["epoch"],
        "best_epoch": state["best_epoch"],
        "best_loss": state["best"],
        "stop_reason": stop_reason,
        "train_seconds": elapsed_before + time.perf_counter() - t0,
        "steps_per_epoch": n_batches,
    }
    return history, info


def _row(values: torch.Tensor) -> dict:
    return {name: float(v) for name, v in zip(TERMS, values.tolist(), strict=True)}


def _save_checkpoint(path, module, opt, generator, history, state, fingerprint, elapsed):
    payload = {
        "module": module.state_dict(),
        "optimizer": opt.state_dict(),
        "generator": generator.get_state(),
        "history": history,
        "state": state,
        "fingerprint": fingerprint,
        "elapsed": elapsed,
    }
    with atomic_file(path) as tmp:
        torch.save(payload, tmp)


# ----------------------------------------------------------------------------- fit()
def fit(
    dataset: xr.Dataset | str | os.PathLike,
    config: FitConfig,
    out_dir: str | os.PathLike,
    seed: int = 0,
    device: str = "auto",
    init_from: str | os.PathLike | None = None,
    progress: bool = True,
) -> Path:
    """Fit ``config.method`` to the ``train`` trials of ``dataset``; write the fit folder.

    Args:
        dataset: a Dataset (dims trial, time, unit; ``activity``, coord ``split``) or
            the path of one saved by ``disrnn bin``.
        config: the FitConfig (``likelihood="auto"`` and ``beta=None`` are resolved from
            the data kind and saved resolved).
        out_dir: the fit folder; written atomically.
        seed: seeds initial weights, batch order and noise (same seed, same numbers on CPU).
        device: ``auto`` | ``cpu`` | ``cuda``.
        init_from: for ``lrRNN+ICA`` / ``LINT``: an lrRNN fit folder to transform (without
            it an lrRNN is trained here first with the same seed).
        progress: show a tqdm progress bar.
    Returns:
        out_dir as a Path.
    Raises:
        ValueError: bad dataset, device, or init_from fit; DivergenceError: NaN/inf loss.
    """
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    if not isinstance(config, FitConfig):
        raise TypeError(f"config must be a FitConfig, got {type(config).__name__}")
    ds, source = load_input(dataset)
    kind = dataset_kind(ds)
    config = config.resolve(kind)
    dev = resolve_device(device)
    torch_seed = int(seed)
    generator = torch.Generator().manual_seed(torch_seed)
    learned = config.kernel == "learned"
    train = prepare(ds, config.history, "train", dev, learned_kernel=learned)
    if train.n_bins < 2:
        raise ValueError(
            f"the dataset has {train.n_bins} usable training bins; it needs trials with "
            f"split == 'train' longer than history={config.history} bins"
        )
    config = config.resolve_steps(train.n_bins)
    val = prepare(ds, config.history, "val", dev, learned_kernel=learned)
    if val.n_bins < 2:
        log.warning("no 'val' trials: early stopping monitors the training loss")
        val = None
    info: dict = {"device": str(dev), "torch_threads": torch.get_num_threads()}
    if config.method in POSTHOC_METHODS:
        module, history, extra = _posthoc(config, train, val, seed, init_from, progress)
        info.update(extra)
    else:
        if init_from is not None:
            log.warning("init_from is used by post-hoc methods only; %s ignores it", config.method)
            init_from = None
        module = build_module(config, train, generator).to(dev)
        fingerprint = {
            "config": config.to_dict(),
            "seed": torch_seed,
            "data": source["activity_sha256"],
        }
        ckpt = out_dir.with_name(f".{out_dir.name}.checkpoint.pt")
        history, extra = _train(
            module, train, val, config, generator, torch_seed, ckpt, fingerprint, progress
        )
        info.update(extra)
    info.update(
        seconds=time.perf_counter() - t_start,
        epochs=info.get("epochs_run"),
        n_train_bins=train.n_bins,
        n_val_bins=0 if val is None else val.n_bins,
    )
    meta = {
        **config.to_dict(),
        "seed": torch_seed,
        "dataset": source,
        "init_from": None if init_from is None else str(init_from),
        "kind": kind,
        "units": [int(u) if np.issubdtype(type(u), np.integer) else str(u) for u in train.units],
        "n_units": int(train.n_units),
        "history": config.history,
    }
    _write_fit(out_dir, module, meta, history, info)
    if config.method not in POSTHOC_METHODS:
        out_dir.with_name(f".{out_dir.name}.checkpoint.pt").unlink(missing_ok=True)
    return out_dir


def _posthoc(config, train, val, seed, init_from, progress):
    """Transform an lrRNN (loaded from ``init_from`` or trained now, seeded like
    ``fit(method="lrRNN", seed=seed)``) by ICA or LINT."""
    if init_from is not None:
        base = load_fit(init_from)
        if base.config.method != "lrRNN":
            raise ValueError(
                f"{config.method} transforms an lrRNN fit; {init_from} is a "
                f"{base.config.method} fit"
            )
        if base.A is None or base.A.shape[1] != config.rank:
            raise ValueError(
                f"{config.method} with groups {config.groups} needs an lrRNN of rank "
                f"{config.rank}; {init_from} has rank {base.module.rank}"
            )
        module = base.module
        history = _read_losses(Path(init_from) / "losses.csv")
        base_info = base.info
    else:
        base_cfg = dataclasses.replace(
            config, method="lrRNN", groups=(config.rank,), posthoc=None, beta=0.0, alpha=0.0
        )
        tmp_gen = torch.Generator().manual_seed(int(seed))
        dev = train.h.device
        module = build_module(base_cfg, train, tmp_gen).to(dev)
        history, base_info = _train(
            module, train, val, base_cfg, tmp_gen, int(seed),
            None, {"posthoc": True}, progress,
        )  # fmt: skip
    module = module.cpu()
    t0 = time.perf_counter()
    # regroup the latents: the transformed model has the posthoc config's groups
    new = build_module(config, train.to("cpu"), torch.Generator().manual_seed(0))
    state = {k: v for k, v in module.state_dict().items() if k != "latent_group"}
    new.load_state_dict(state, strict=False)
    if config.posthoc == "lint":
        lint_transform(new)
    else:
        with torch.no_grad():
            h = train.h.cpu()
            lat = new.encode(new.kernel(h) if h.dim() == 3 else h).numpy()
        ica_transform(new, lat, seed=int(seed))
    info = {
        "stop_reason": "posthoc",
        "posthoc_seconds": time.perf_counter() - t0,
        "base_info": base_info,
        "epochs_run": base_info.get("epochs_run"),
        "best_epoch": base_info.get("best_epoch"),
    }
    return new, history, info


def _write_fit(out_dir: Path, module, meta: dict, history: list[dict], info: dict) -> None:
    import pandas as pd

    with atomic_dir(out_dir) as tmp:
        (tmp / "config.json").write_text(json.dumps(meta, indent=2))
        (tmp / "fit_info.json").write_text(json.dumps(info, indent=2, default=float))
        cols = ["epoch", "split", "lr", "beta", "alpha", *TERMS]
        pd.DataFrame(history, columns=cols).to_csv(tmp / "losses.csv", index=False)
        state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        torch.save(state, tmp / "weights.pt")  # last: a folder with weights.pt is complete


def _read_losses(path: Path) -> list[dict]:
    import pandas as pd

    if not path.exists():
        return []
    return pd.read_csv(path).to_dict("records")


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------ the Fit object
class Fit:
    """A fitted model, as returned by :func:`load_fit` (see docs/design.md).

    Attributes:
        config, seed, path, info (fit_info.json), module (eval mode, cpu),
        groups, latent_group (latent,) int; A (unit, latent), B (latent, unit) (held-out
        columns zero), bias (unit,) = A b + a so the one-step mean is f(W h + bias);
        W = A B (unit, unit); J = B A (latent, latent); A/B/W/J are None for MLP variants.
    """

    def __init__(self, path: Path, meta: dict, module: DisRNN, info: dict):
        self.path = path
        self.meta = meta
        self.config = config_from_meta(meta)
        self.seed = int(meta["seed"])
        self.info = info
        self.module = module.eval()
        self.groups = tuple(self.config.groups)
        self.latent_group = module.latent_group.numpy().astype(int)
        self.history = int(meta.get("history", self.config.history))
        self.units = np.asarray(meta.get("units", np.arange(module.n_units)))
        linear = self.config.encoder == "linear" and self.config.decoder == "linear"
        with torch.no_grad():
            self.A = module.A.double().numpy() if self.config.decoder == "linear" else None
            self.B = module.B.double().numpy() if self.config.encoder == "linear" else None
            if linear:
                self.bias = self.A @ module.b.double().numpy() + module.a.double().numpy()
                self.W = self.A @ self.B
                self.J = self.B @ self.A
            else:
                self.bias = module.a.double().numpy()
                self.W = self.J = None
            self.noise_sd = (
                np.exp(module.log_s.double().numpy()) if module.likelihood == "gaussian" else None
            )
            self.sigma_q = float(torch.exp(module.log_sigma))

    def __repr__(self) -> str:
        return f"Fit({self.config.method}, groups={self.groups}, seed={self.seed}, {self.path})"

    # --------------------------------------------------------------------- helpers
    def _arrays(self, ds: xr.Dataset):
        n = ds.sizes.get("unit")
        if n != self.module.n_units:
            raise ValueError(
                f"the dataset has {n} units; this fit was trained on {self.module.n_units}"
            )
        arr = trial_arrays(ds, self.history)
        lagged = torch.from_numpy(arr["lagged"])  # (trial, time - L, L, unit)
        with torch.no_grad():
            h = self.module.kernel(lagged)  # (trial, time - L, unit)
        return arr, h

    def _pad(self, values: np.ndarray, ds: xr.Dataset, dim: str, coords: dict) -> xr.DataArray:
        """Prepend L NaN bins: (trial, time - L, d) -> DataArray (trial, time, d)."""
        pad = np.full((values.shape[0], self.history, values.shape[2]), np.nan)
        out = np.concatenate([pad, values], axis=1)
        return xr.DataArray(
            out,
            dims=("trial", "time", dim),
            coords={"trial": ds["trial"].values, "time": ds["time"].values, **coords},
        )

    def _trial_coords(self, da: xr.DataArray, ds: xr.Dataset) -> xr.DataArray:
        for name in ("split", "condition"):
            if name in ds.coords and ds[name].dims == ("trial",):
                da = da.assign_coords({name: ("trial", ds[name].values)})
        return da

    # ------------------------------------------------------------------ public API
    @torch.no_grad()
    def latents(self, ds: xr.Dataset) -> xr.DataArray:
        """Posterior means mu_t = B h_t + b: (trial, time, latent); first L bins NaN."""
        _, h = self._arrays(ds)
        mu = self.module.encode(h).double().numpy()
        coords = {
            "latent": np.arange(self.module.rank),
            "latent_group": ("latent", self.latent_group),
        }
        return self._trial_coords(self._pad(mu, ds, "latent", coords), ds)

    @torch.no_grad()
    def _eta(self, ds):
        arr, h = self._arrays(ds)
        return arr, self.module.decode(self.module.encode(h))

    def predict(self, ds: xr.Dataset) -> xr.DataArray:
        """One-step-ahead mean activity f(A mu_t + a): (trial, time, unit) expected counts
        per bin (Poisson) or continuous mean; first L bins NaN."""
        _, eta = self._eta(ds)
        with torch.no_grad():
            mean = self.module.mean(eta).double().numpy()
        return self._trial_coords(self._pad(mean, ds, "unit", {"unit": ds["unit"].values}), ds)

    def nll(self, ds: xr.Dataset) -> xr.DataArray:
        """-log p(x_t | z_t = mu_t) per bin and unit in nats (log x! included for counts):
        (trial, time, unit); NaN on the first L bins and on masked bins."""
        arr, eta = self._eta(ds)
        x = torch.from_numpy(arr["x"])
        with torch.no_grad():
            out = nll_terms(self.module, x, eta, constant=True).double().numpy()
        out[~arr["valid"]] = np.nan
        return self._trial_coords(self._pad(out, ds, "unit", {"unit": ds["unit"].values}), ds)

    @torch.no_grad()
    def rollout(
        self,
        ds: xr.Dataset,
        n_steps: int,
        start: int | None = None,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> xr.DataArray:
        """Run the network on its own from the real bins before ``start``.

        Each step: h_t = sum_l psi_l tanh(x_{t-l}) over the last L (real, then generated)
        bins, z_t = mu_t (+ sigma_q eps when ``sample``), x_t = f(A z_t + a) (or a draw
        from the Gaussian / Poisson observation model when ``sample``); x_t is fed back.

        Args:
            ds: dataset with the same units; its bins before ``start`` seed the history.
            n_steps: number of generated bins.
            start: first generated bin (default and minimum L).
            sample: draw latents and observations instead of feeding back means.
            generator: torch.Generator for ``sample`` (default: seeded with the fit's seed).
        Returns:
            (trial, time, unit) DataArray of generated activity, time = the bin centres
            from ``start`` on (extended with the bin spacing past the trial's end).
        Raises:
            ValueError: start < L or n_steps < 1.
        """
        L = self.history
        start = L if start is None else int(start)
        if start < L or start > ds.sizes["time"]:
            raise ValueError(
                f"start must be between history L={L} and the trial length, got {start}"
            )
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps}")
        if sample and generator is None:
            generator = torch.Generator().manual_seed(self.seed)
        m = self.module
        act = torch.from_numpy(ds["activity"].values.astype(np.float32))
        buf = torch.tanh(act[:, start - L : start].flip(1))  # (trial, L, unit), l = 1 first
        out = torch.empty(act.shape[0], n_steps, act.shape[2])
        sigma = torch.exp(m.log_sigma)
        for t in range(n_steps):
            mu = m.encode(m.kernel(buf))
            z = mu
            if sample:
                z = mu + sigma * torch.randn(mu.shape, generator=generator)
            mean = m.mean(m.decode(z))
            x = mean
            if sample and m.likelihood == "gaussian":
                x = mean + torch.exp(m.log_s) * torch.randn(mean.shape, generator=generator)
            elif sample:
                x = torch.poisson(mean, generator=generator)
            out[:, t] = x
            buf = torch.cat([torch.tanh(x)[:, None], buf[:, :-1]], dim=1)
        times = np.asarray(ds["time"].values, dtype=float)
        step = float(np.median(np.diff(times))) if times.size > 1 else 1.0
        extra = np.arange(1, n_steps + 1) * step + times[-1]
        t_all = np.concatenate([times, extra])[start : start + n_steps]
        da = xr.DataArray(
            out.double().numpy(),
            dims=("trial", "time", "unit"),
            coords={"trial": ds["trial"].values, "time": t_all, "unit": ds["unit"].values},
        )
        return self._trial_coords(da, ds)


def config_from_meta(meta: dict) -> FitConfig:
    """The FitConfig stored (flat, beside seed/dataset/...) in a fit's config.json."""
    names = {f.name for f in dataclasses.fields(FitConfig)}
    return FitConfig.from_dict({k: v for k, v in meta.items() if k in names})


def load_fit(path: str | os.PathLike) -> Fit:
    """Load a fit folder written by :func:`fit`.

    Raises:
        FileNotFoundError: no complete fit (``weights.pt``) at ``path``.
    """
    path = Path(path)
    if not (path / "weights.pt").exists():
        raise FileNotFoundError(
            f"no complete fit at {str(path)!r} (weights.pt missing); run `disrnn fit` first"
        )
    meta = json.loads((path / "config.json").read_text())
    info_path = path / "fit_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    config = config_from_meta(meta)
    state = torch.load(path / "weights.pt", weights_only=True, map_location="cpu")
    n_units = int(meta["n_units"])
    dummy = FitData(
        torch.zeros(1, n_units), torch.zeros(1, n_units), np.arange(n_units),
        state["input_mask"].bool(),
    )  # fmt: skip
    module = build_module(config, dummy, torch.Generator().manual_seed(0))
    module.load_state_dict(state)
    return Fit(path, meta, module, info)
