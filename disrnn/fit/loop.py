"""One optimisation run of a network: AdamW over mini-batches of the training bins, the
learning-rate schedule and penalty warm-up, early stopping on the validation loss and
checkpoints a killed run resumes from.

:func:`train_loop` is the only entry; ``disrnn.fit.train`` calls it for every restart
and phase, ``disrnn.fit.posthoc`` for the lrRNN it transforms.
"""

from __future__ import annotations

import copy
import logging
import math
import pickle
import time
from collections.abc import Callable
from pathlib import Path

import torch

from disrnn._atomic import atomic_file
from disrnn.fit.config import FitConfig
from disrnn.fit.objective import TERMS, loss_terms
from disrnn.fit.tensors import FitData
from disrnn.models.modules import DisRNN

__all__ = ["DivergenceError", "EpochCallback", "load_checkpoint", "train_loop"]

log = logging.getLogger(__name__)

#: called as ``on_epoch(epoch)`` after each finished (and checkpointed) epoch
EpochCallback = Callable[[int], None]


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite."""


def train_loop(
    module: DisRNN,
    train: FitData,
    val: FitData | None,
    config: FitConfig,
    generator: torch.Generator,
    seed: int,
    ckpt: Path | None,
    fingerprint: dict,
    progress: bool,
    on_epoch: EpochCallback | None = None,
) -> tuple[list[dict], dict]:
    """Train ``module`` in place; returns (loss history rows, info). Restores the best weights.

    Args:
        module: the network (on the device of ``train``); train, val: the bins (val None:
            early stopping on the training loss); config: resolved (epochs, patience set);
        generator: batch order and noise; seed: seeds the fixed validation noise;
        ckpt: checkpoint path (None: none); resumed when its ``fingerprint`` matches.
        progress: show a tqdm bar; on_epoch: called after each epoch (and checkpoint).
    Raises:
        DivergenceError: a non-finite loss.
    """
    device = train.h.device
    opt = torch.optim.AdamW(
        module.parameters(), lr=config.lr, weight_decay=config.weight_decay, foreach=True
    )
    val_gen = torch.Generator().manual_seed(seed + 7919)
    val_eps = None
    if val is not None:
        val_eps = torch.randn(val.n_bins, module.rank, generator=val_gen).to(device)
    run = {
        "history": [],
        "state": {"epoch": 0, "best": math.inf, "best_epoch": -1, "bad": 0, "best_state": None},
        "elapsed": 0.0,
    }
    saved = None if ckpt is None or not ckpt.exists() else load_checkpoint(ckpt, device)
    if saved is not None:
        if saved.get("fingerprint") == fingerprint:
            module.load_state_dict(saved["module"])
            opt.load_state_dict(saved["optimizer"])
            generator.set_state(saved["generator"])
            run = {
                "history": saved["history"],
                "state": saved["state"],
                "elapsed": saved.get("elapsed", 0.0),
            }
            log.info("resuming from %s at epoch %d", ckpt, run["state"]["epoch"])
        else:
            log.warning("ignoring checkpoint %s of a different config or dataset", ckpt)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        # small dense ops: one thread is much faster than two contending ones
        torch.set_num_threads(1)
    try:
        return _loop(
            module, train, val, config, generator, ckpt, fingerprint, progress, on_epoch,
            opt, val_eps, run,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)


def _loop(
    module, train, val, config, generator, ckpt, fingerprint, progress, on_epoch,
    opt, val_eps, run,
):  # fmt: skip
    from tqdm.auto import tqdm

    history, state = run["history"], run["state"]
    t0 = time.perf_counter()

    def checkpoint():
        elapsed = run["elapsed"] + time.perf_counter() - t0
        _save_checkpoint(ckpt, module, opt, generator, history, state, fingerprint, elapsed)

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
        train_terms = _train_epoch(module, train, config, opt, generator, beta, alpha)
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
            checkpoint()
        if on_epoch is not None:
            on_epoch(epoch)
    bar.close()
    if ckpt is not None:  # a finished restart resumes as finished
        checkpoint()
    if state["bad"] >= config.patience and stop_reason != "early_stopping":
        stop_reason = "early_stopping"
    if state["best_state"] is not None:
        module.load_state_dict(state["best_state"])
    info = {
        "epochs_run": state["epoch"],
        "best_epoch": state["best_epoch"],
        "best_loss": state["best"],
        "stop_reason": stop_reason,
        "train_seconds": run["elapsed"] + time.perf_counter() - t0,
        "steps_per_epoch": max(train.n_bins // min(config.batch_size, train.n_bins), 1),
    }
    return history, info


def _train_epoch(module, train: FitData, config, opt, generator, beta, alpha) -> torch.Tensor:
    """One pass over the training bins in random mini-batches; (term,) mean loss terms."""
    device = train.h.device
    n, m = train.n_bins, min(config.batch_size, train.n_bins)
    n_batches = max(n // m, 1)
    pc_m = None if config.pc_batch is None else min(config.pc_batch, n)
    K = module.rank
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
    return (sums / n_batches).cpu()  # one host sync per epoch


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


def _row(values: torch.Tensor) -> dict:
    return {name: float(v) for name, v in zip(TERMS, values.tolist(), strict=True)}


#: what a checkpoint holds; each value is tensors and plain containers only
CHECKPOINT_KEYS = ("module", "optimizer", "generator", "history", "state", "fingerprint")


def load_checkpoint(path: Path, device: torch.device) -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)``: tensors and plain
    containers only, so a file planted in its place cannot run code when it is read.

    Raises:
        ValueError: the file holds anything else (other objects, a corrupt archive) or
            lacks a key of :data:`CHECKPOINT_KEYS`; it is left untouched and not used.
    """
    try:
        saved = torch.load(path, weights_only=True, map_location=device)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"refusing to load the checkpoint {str(path)!r}: it is not a checkpoint this "
            f"package wrote (it holds more than tensors and plain containers, or is corrupt: "
            f"{first[:200]}); it was not loaded; delete it to train this fit afresh"
        ) from None
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(saved, dict) or k not in saved]
    if missing:
        raise ValueError(
            f"the checkpoint {str(path)!r} lacks {', '.join(missing)}; it is not a checkpoint "
            "this package wrote; delete it to train this fit afresh"
        )
    return saved


def _save_checkpoint(path, module, opt, generator, history, state, fingerprint, elapsed):
    # generator state is a uint8 tensor, everything else tensors, numbers, str, lists
    # and dicts: the file loads with weights_only=True
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
