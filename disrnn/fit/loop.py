"""One optimisation run of a network: AdamW over mini-batches of the training bins, the
learning-rate schedule and penalty warm-up, early stopping on the validation loss and
checkpoints a killed run resumes from.

:func:`train_loops` trains the networks of S seeds together (:mod:`disrnn.fit.stack`),
each with its own state; :func:`train_loop` is one seed. ``disrnn.fit.train`` calls them
for every restart and phase, ``disrnn.fit.posthoc`` for the lrRNN it transforms.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch

from disrnn.fit.checkpoint import finished, load_checkpoint, resume, save_checkpoint
from disrnn.fit.config import FitConfig
from disrnn.fit.objective import TERMS
from disrnn.fit.tensors import FitData
from disrnn.models.modules import DisRNN

__all__ = [
    "DivergenceError",
    "EpochCallback",
    "Seat",
    "load_checkpoint",
    "train_loop",
    "train_loops",
]

log = logging.getLogger(__name__)

#: called as ``on_epoch(epoch)`` after each finished (and checkpointed) epoch
EpochCallback = Callable[[int], None]


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite."""


@dataclasses.dataclass
class Seat:
    """One seed's network and its own state in a run of :func:`train_loops`.

    module: the network (on the device of the data); generator: its batch order and
    noise; seed: seeds its fixed validation noise; ckpt: its checkpoint path (None:
    none), resumed when the file's ``fingerprint`` matches.
    """

    module: DisRNN
    generator: torch.Generator
    seed: int
    ckpt: Path | None
    fingerprint: dict


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
    seat = Seat(module, generator, seed, ckpt, fingerprint)
    return train_loops([seat], train, val, config, progress, on_epoch)[0]


def train_loops(
    seats: list[Seat],
    train: FitData,
    val: FitData | None,
    config: FitConfig,
    progress: bool,
    on_epoch: EpochCallback | None = None,
) -> list[tuple[list[dict], dict]]:
    """Train the networks of S seeds together (:class:`disrnn.fit.stack.SeedStack`), each
    as :func:`train_loop` would alone: its own batches and noise, early stopping, best
    weights and checkpoint. Returns one (history, info) per seat, in order.

    The seeds share the epochs: a seed that stops early leaves the stack (its result is
    fixed), and the others go on without its arithmetic. A killed run resumes every seed
    from its checkpoint when the unfinished seeds' checkpoints are all at the same epoch;
    otherwise (a kill between two seeds' writes) the unfinished seeds start afresh, with
    a warning.

    Raises:
        DivergenceError: a non-finite loss of a seed still training (named when S > 1).
    """
    from disrnn.fit.stack import SeedStack
    from disrnn.fit.threads import threads_for

    device = train.h.device
    stack = SeedStack([seat.module for seat in seats], config.kl_weight)
    opt = _optimizer(stack, config)
    K = stack.template.rank
    val_eps = None
    if val is not None:  # (seed, bin, latent) fixed validation noise of each seed
        val_eps = torch.stack(
            [
                torch.randn(val.n_bins, K, generator=torch.Generator().manual_seed(st.seed + 7919))
                for st in seats
            ]
        ).to(device)
    runs = resume(seats, stack, opt, config, device)
    # on the CPU: one thread per seed of the stack, up to torch's (disrnn.fit.threads)
    with threads_for(len(seats) if device.type == "cpu" else torch.get_num_threads()):
        return _loop(seats, stack, train, val, config, progress, on_epoch, opt, val_eps, runs)


def _optimizer(stack, config: FitConfig) -> torch.optim.AdamW:
    """AdamW over the stack's parameters, with the config's lr and weight decay."""
    device = stack.parameters()[0].device
    # the fused kernel does the whole update in one call: on the ALM session's 8-latent
    # fit the step took 110 us against 300 us for foreach (about 2 s of a 30 s fit)
    return torch.optim.AdamW(
        stack.parameters(), lr=config.lr, weight_decay=config.weight_decay,
        **({"fused": True} if device.type in ("cpu", "cuda") else {"foreach": True}),
    )  # fmt: skip


def _shrink(stack, opt, keep: list[int], config: FitConfig):
    """(stack, optimiser) of the networks at positions ``keep`` only, each with its
    parameters and AdamW moments as they were: seeds that stopped leave the stack, so
    the arithmetic of an epoch shrinks with the seeds still training. Every network,
    kept or not, gets its stacked parameters written back first."""
    from disrnn.fit.stack import SeedStack

    stack.write_back()
    states = [stack.optimizer_state(opt, p) for p in keep]
    smaller = SeedStack([stack.modules[p] for p in keep], stack.kl_weight)
    new_opt = _optimizer(smaller, config)
    smaller.load_optimizer_states(new_opt, states)
    return smaller, new_opt


def _loop(seats, stack, train, val, config, progress, on_epoch, opt, val_eps, runs):
    from tqdm.auto import tqdm

    S = len(seats)
    t0 = time.perf_counter()
    live = list(range(S))  # the seats whose networks the stack holds, in its order

    def checkpoint(s):
        seat, run = seats[s], runs[s]
        if seat.ckpt is None:
            return
        elapsed = run["elapsed"] + time.perf_counter() - t0
        p = live.index(s)
        save_checkpoint(
            seat.ckpt, stack.state_dict(p), stack.optimizer_state(opt, p), seat.generator,
            run["history"], run["state"], seat.fingerprint, elapsed,
        )  # fmt: skip

    def stop(s):
        runs[s]["stopped_at"] = time.perf_counter()
        checkpoint(s)  # a finished seed resumes as finished

    for run in runs:
        if finished(run["state"], config):
            run["stopped_at"] = t0  # resumed finished: nothing to train
    start = min((r["state"]["epoch"] for r in runs if r["stopped_at"] is None), default=0)
    desc = config.method if S == 1 else f"{config.method} x {S} seeds"
    bar = tqdm(total=config.epochs, initial=start, disable=not progress, desc=desc)
    for epoch in range(start, config.epochs):
        for s, run in enumerate(runs):
            if run["stopped_at"] is None and run["state"]["bad"] >= config.patience:
                stop(s)
        active = [s for s in live if runs[s]["stopped_at"] is None]
        if not active:
            break
        if len(active) < len(live):
            stack, opt = _shrink(stack, opt, [live.index(s) for s in active], config)
            live = active
        lr = _lr_at(config, epoch)
        scale = _penalty_scale(config, epoch)
        beta, alpha = config.beta * scale, config.alpha * scale
        for group in opt.param_groups:
            group["lr"] = lr
        for m in stack.modules:
            m.train()
        gens = [seats[s].generator for s in live]
        train_terms = _train_epoch(stack, train, config, opt, gens, beta, alpha)
        for m in stack.modules:
            m.eval()
        val_terms = None
        if val is not None:
            eps = val_eps[live] if len(live) < S else val_eps
            val_terms = _evaluate(stack, val, eps, val.n_bins, config, beta, alpha).cpu()
        row = {"epoch": epoch, "lr": lr, "beta": beta, "alpha": alpha}
        for p, s in enumerate(live):
            run = runs[s]
            who = "" if S == 1 else f" of seed {seats[s].seed}"
            _check_finite(train_terms[p], epoch, "train", who)
            if val_terms is not None:
                _check_finite(val_terms[p], epoch, "val", who)
            score = _record(run, row, train_terms[p], None if val_terms is None else val_terms[p],
                            config, epoch, lambda p=p, st=stack: st.state_dict(p))  # fmt: skip
            if p == 0:
                bar.set_postfix(loss=f"{score:.4g}", refresh=False)
            if (epoch + 1) % config.checkpoint_every == 0:
                checkpoint(s)
        bar.update(1)
        if on_epoch is not None:
            on_epoch(epoch)
    bar.close()
    stack.write_back()
    for s, run in enumerate(runs):
        if run["stopped_at"] is None:
            stop(s)
    return [_finish(run, seats[s].module, train, config, t0, S) for s, run in enumerate(runs)]


def _finish(run, module, train, config, t0, n_seeds) -> tuple[list[dict], dict]:
    """A seed's (history, info) after the loop; its module takes its best weights."""
    state = run["state"]
    # a seed stops early exactly when its patience ran out, at the last epoch included
    reason = "early_stopping" if state["bad"] >= config.patience else "max_epochs"
    if state["best_state"] is not None:
        module.load_state_dict(state["best_state"])
    info = {
        "epochs_run": state["epoch"],
        "best_epoch": state["best_epoch"],
        "best_loss": state["best"],
        "stop_reason": reason,
        "train_seconds": run["elapsed"] + run["stopped_at"] - t0,
        "steps_per_epoch": max(train.n_bins // min(config.batch_size, train.n_bins), 1),
    }
    if n_seeds > 1:
        info["seeds_together"] = n_seeds
    return run["history"], info


def _record(run, row, train_terms, val_terms, config, epoch, snapshot) -> float:
    """One seed's epoch: its history rows, best weights and patience; returns the score
    early stopping watches (the validation loss, or the training loss without val)."""
    history, state = run["history"], run["state"]
    history.append({**row, "split": "train", **_row(train_terms)})
    if val_terms is not None:
        history.append({**row, "split": "val", **_row(val_terms)})
        score = float(val_terms[0])
    else:
        score = float(train_terms[0])
    if epoch + 1 < _warmup_epochs(config):
        pass  # the objective still changes: no best model or patience yet
    elif score < state["best"]:
        state.update(best=score, best_epoch=epoch, bad=0)
        state["best_state"] = snapshot()
    else:
        state["bad"] += 1
    state["epoch"] = epoch + 1
    return score


def _draw_epoch(n, m, n_batches, K, pc_m, generator, device):
    """One seed's draws of an epoch, in a lone fit's order: (batch, m) bin order,
    (batch, m, latent) noise and, with a PC batch, its (batch, pc_m) bins and noise."""
    perm = torch.randperm(n, generator=generator)[: n_batches * m].to(device)
    perm = perm.view(n_batches, m)
    eps = torch.randn(n_batches, m, K, generator=generator).to(device)
    pc_idx = pc_eps = None
    if pc_m is not None:
        # (batch, pc_batch) bins drawn without replacement within each step
        pc_idx = torch.rand(n_batches, n, generator=generator).argsort(1)[:, :pc_m]
        pc_idx = pc_idx.to(device)
        pc_eps = torch.randn(n_batches, pc_m, K, generator=generator).to(device)
    return perm, eps, pc_idx, pc_eps


def _train_epoch(stack, train: FitData, config, opt, generators, beta, alpha) -> torch.Tensor:
    """One pass over the training bins in random mini-batches; (seed, term) mean loss
    terms. ``generators[s]`` draws the batches and noise of the stack's seed s."""
    device = train.h.device
    n, m = train.n_bins, min(config.batch_size, train.n_bins)
    n_batches = max(n // m, 1)
    pc_m = None if config.pc_batch is None or beta <= 0 else min(config.pc_batch, n)
    K = stack.template.rank
    draws = [_draw_epoch(n, m, n_batches, K, pc_m, g, device) for g in generators]
    perm = torch.stack([d[0] for d in draws], 1)  # (batch, seed, m)
    eps = torch.stack([d[1] for d in draws], 1)  # (batch, seed, m, latent)
    pc_idx = pc_eps = None
    if pc_m is not None:
        pc_idx = torch.stack([d[2] for d in draws], 1)  # (batch, seed, pc_m)
        pc_eps = torch.stack([d[3] for d in draws], 1)
    sums = torch.zeros(stack.size, len(TERMS), device=device)
    for k in range(n_batches):
        idx = perm[k]  # (seed, m)
        pc_args = (None, None)
        if pc_idx is not None:
            pc_args = (train.h[pc_idx[k]], pc_eps[k])
        terms = stack.loss_terms(
            train.h[idx], train.x[idx], eps[k], n, beta, alpha, *pc_args, u=train.u_at(idx)
        )  # (seed, term)
        opt.zero_grad(set_to_none=True)
        terms[:, 0].sum().backward()
        opt.step()
        sums += terms.detach()
    return (sums / n_batches).cpu()  # one host sync per epoch


@torch.no_grad()
def _evaluate(
    stack, data: FitData, eps: torch.Tensor, n_total: int, config, beta: float, alpha: float
) -> torch.Tensor:
    """(seed, term) mean loss terms over ``data`` in chunks of the batch size; ``eps``
    (seed, bin, latent) is each seed's fixed noise."""
    m = config.batch_size
    n = data.n_bins
    S = stack.size
    out = torch.zeros(S, len(TERMS), device=data.h.device)
    weight = 0
    for start in range(0, n, m):
        stop = min(start + m, n)
        if stop - start < 2:
            continue
        sl = slice(start, stop)
        h, x = data.h[sl], data.x[sl]
        u = data.u_at(sl)
        terms = stack.loss_terms(
            h.expand(S, *h.shape), x.expand(S, *x.shape), eps[:, sl], n_total, beta, alpha,
            u=None if u is None else u.expand(S, *u.shape),
        )  # fmt: skip
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


def _check_finite(values: torch.Tensor, epoch: int, split: str, who: str = "") -> None:
    bad = [name for name, v in zip(TERMS, values.tolist(), strict=True) if not math.isfinite(v)]
    if bad:
        term = [b for b in bad if b != "total"] or ["total"]
        raise DivergenceError(
            f"the loss{who} diverged at epoch {epoch} ({split}): non-finite {', '.join(term)} "
            f"term; try a smaller lr, smaller beta/alpha, or check the data for extreme values"
        )


def _row(values: torch.Tensor) -> dict:
    return {name: float(v) for name, v in zip(TERMS, values.tolist(), strict=True)}
