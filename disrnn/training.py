"""The one training loop of every method: ``fit(...)``.

    fit(dataset, FitConfig.create(method="DisRNN"), "results/fits/x/seed0", seed=0)
    f = load_fit("results/fits/x/seed0"); f.latents(ds); f.predict(ds); f.rollout(ds, 50)

Modules: ``disrnn.fit_data`` (dataset checks, bins of a split), ``disrnn.fitted`` (the
:class:`Fit` object and :func:`load_fit`, re-exported here), ``disrnn.initialise``
(restart seeds, the restart selection objective, the rotation initialisation).

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
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from disrnn._atomic import atomic_file
from disrnn.fit_data import (  # noqa: F401 (re-exported)
    FitData,
    dataset_kind,
    file_sha256,
    load_input,
    prepare,
    trial_arrays,
)
from disrnn.fitted import (  # noqa: F401 (re-exported)
    TERMS,
    Fit,
    build_module,
    check_input,
    config_from_meta,
    load_fit,
    nll_terms,
    read_losses,
    write_fit,
)
from disrnn.initialise import restart_seed, selection_objective
from disrnn.losses import kl_standard_normal, offblock_penalty, partial_correlation
from disrnn.models.config import FitConfig
from disrnn.models.methods import POSTHOC_METHODS, ica_transform, lint_transform
from disrnn.models.modules import DisRNN

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


# ------------------------------------------------------------------------- the loss
def loss_terms(
    module: DisRNN,
    h: torch.Tensor,
    x: torch.Tensor,
    eps: torch.Tensor,
    n_total: int,
    beta: float,
    alpha: float,
    pc_h: torch.Tensor | None = None,
    pc_eps: torch.Tensor | None = None,
    u: torch.Tensor | None = None,
) -> torch.Tensor:
    """Loss terms of one mini-batch, stacked as (total, nll, kl, pc, bd).

    total = mean_i [sum_n NLL(x_in | z_i) + KL_i] + beta PC + alpha BD, z_i = mu_i + sigma eps_i

    Args:
        h: (batch, unit) history features; x: (batch, unit) targets;
        eps: (batch, latent) standard normal noise; n_total: training bins N_tot;
        beta, alpha: weights of PC and BD (BD only for a linear encoder and decoder).
        pc_h, pc_eps: (pc_batch, unit) history features and (pc_batch, latent) noise of a
            separate batch to estimate PC on (default: the likelihood batch).
        u: (batch, unit) known input added to the decoder's pre-activation, or None.
    """
    if h.dim() == 3:  # learned kernel: (batch, L, unit) -> (batch, unit)
        h = module.kernel(h)
    mu = module.encode(h)
    log_sigma = module.log_sigma
    z = mu + torch.exp(log_sigma) * eps
    eta = module.decode(z, u)
    nll = nll_terms(module, x, eta, constant=False).sum(-1).mean()
    kl = kl_standard_normal(mu, log_sigma).mean()
    zero = nll.new_zeros(())
    pc = zero
    if beta > 0:
        if pc_h is not None:
            mu = module.encode(module.kernel(pc_h) if pc_h.dim() == 3 else pc_h)
            z = mu + torch.exp(log_sigma) * pc_eps
        pc = partial_correlation(z, mu, log_sigma, module.groups, n_total)
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
        sl = slice(start, stop)
        hx = (data.h[sl], data.x[sl])
        terms = loss_terms(module, *hx, eps[sl], n_total, beta, alpha, u=data.u_at(sl))
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
    pc_m = None if config.pc_batch is None else min(config.pc_batch, n)
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
        pc_idx = pc_eps = None
        if pc_m is not None and beta > 0:
            # (batch, pc_batch) bins drawn without replacement within each step
            pc_idx = torch.rand(n_batches, n, generator=generator).argsort(1)[:, :pc_m]
            pc_idx = pc_idx.to(device)
            pc_eps = torch.randn(n_batches, pc_m, K, generator=generator).to(device)
        sums = torch.zeros(len(TERMS), device=device)
        for k in range(n_batches):
            idx = perm[k]
            pc_args = ()
            if pc_idx is not None:
                pc_args = (train.h[pc_idx[k]], pc_eps[k])
            hx = (train.h[idx], train.x[idx])
            terms = loss_terms(module, *hx, eps[k], n, beta, alpha, *pc_args, u=train.u_at(idx))
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
    if ckpt is not None:  # a finished restart resumes as finished
        _save_checkpoint(
            ckpt, module, opt, generator, history, state, fingerprint,
            elapsed_before + time.perf_counter() - t0,
        )  # fmt: skip
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
        module, history, extra = _fit_restarts(
            config, train, val, torch_seed, source, out_dir, dev, progress
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
        "input": train.u is not None,
    }
    write_fit(out_dir, module, meta, history, info)
    if config.method not in POSTHOC_METHODS:
        for r in range(config.restarts):
            _checkpoint_path(out_dir, r).unlink(missing_ok=True)
            _checkpoint_path(out_dir, r, "-pretrain").unlink(missing_ok=True)
    return out_dir


def _checkpoint_path(out_dir: Path, restart: int, phase: str = "") -> Path:
    suffix = ("" if restart == 0 else f"-restart{restart}") + phase
    return out_dir.with_name(f".{out_dir.name}.checkpoint{suffix}.pt")


#: fits with at least this many epochs get the full rotation search of ``pc_rotation``
ROTATION_FULL_EPOCHS = 30


def _rotation_init(module, train, config, generator, seed, val, out_dir, r, fingerprint, progress):
    """In place: train the beta = 0 objective, then rotate the latents to the lowest PC."""
    from disrnn.initialise import pc_rotation, rotate_latents

    pre_cfg = dataclasses.replace(config, beta=0.0, alpha=0.0)
    _, info = _train(
        module, train, val, pre_cfg, generator, seed,
        _checkpoint_path(out_dir, r, "-pretrain"), {**fingerprint, "phase": "pretrain"},
        progress,
    )  # fmt: skip
    t0 = time.perf_counter()
    with torch.no_grad():
        h = module.kernel(train.h) if train.h.dim() == 3 else train.h
        mu = module.encode(h)
    # a short fit (tests, smoke runs) gets a proportionally short search
    b = min(1.0, config.epochs / ROTATION_FULL_EPOCHS)
    search = {
        "starts": max(2, round(32 * b)),
        "steps": max(5, round(30 * b)),
        "keep": max(1, round(4 * b)),
        "refine_steps": max(10, round(120 * b)),
    }
    rot, pc = pc_rotation(mu, float(module.log_sigma), module.groups, generator, **search)
    rotate_latents(module, rot)
    return {**info, "rotation_pc": pc, "rotation_seconds": time.perf_counter() - t0}


def _fit_restarts(config, train, val, seed, source, out_dir, dev, progress):
    """Train ``config.restarts`` initialisations; keep the lowest selection objective.

    Restart r is seeded with :func:`restart_seed` (restart 0 with ``seed`` itself, so one
    restart is the plain fit); each keeps its own checkpoint until the fit is written.
    Returns (module, loss history of the kept restart, info).
    """
    select_on = val if val is not None else train
    best = None
    runs = []
    for r in range(config.restarts):
        rseed = restart_seed(seed, r)
        generator = torch.Generator().manual_seed(rseed)
        module = build_module(config, train, generator).to(dev)
        fingerprint = {
            "config": config.to_dict(),
            "seed": seed,
            "restart": r,
            "data": source["activity_sha256"],
            "input": source.get("input_sha256"),
        }
        pre = None
        if config.init == "rotation" and config.beta > 0 and len(config.groups) > 1:
            pre = _rotation_init(
                module, train, config, generator, rseed, val, out_dir, r, fingerprint, progress
            )
        history, info = _train(
            module, train, val, config, generator, rseed, _checkpoint_path(out_dir, r),
            fingerprint, progress,
        )  # fmt: skip
        if pre is not None:
            info = {**info, "pretrain": pre}
        if config.restarts > 1:
            score = selection_objective(module, select_on, config.beta, seed)
        else:
            score = {"objective": float("nan")}
        runs.append({"restart": r, "seed": rseed, **score, **info})
        if best is None or score["objective"] < best[0]["objective"]:
            best = (score, module, history, info, r)
    score, module, history, info, r = best
    info = {**info, "restart": r, "restarts": runs if config.restarts > 1 else []}
    if config.restarts > 1:
        info["train_seconds"] = sum(run["train_seconds"] for run in runs)
    return module, history, info


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
        check_input(base.uses_input, train.u is not None, f"the lrRNN fit {init_from}")
        module = base.module
        history = read_losses(Path(init_from) / "losses.csv")
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
