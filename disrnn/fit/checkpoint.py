"""Checkpoints of a training run: what a file holds, how it is read safely, and how the
seats of :func:`disrnn.fit.loop.train_loops` resume from theirs.

A checkpoint is one seed's state in the format of a lone fit (its network's and
optimiser's state dicts, generator state, loss history, early-stopping state,
fingerprint), written atomically and read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import math
import pickle
from pathlib import Path

import torch

from disrnn._atomic import atomic_file
from disrnn.fit.config import FitConfig

__all__ = [
    "CHECKPOINT_KEYS",
    "finished",
    "fresh_run",
    "load_checkpoint",
    "resume",
    "save_checkpoint",
]

log = logging.getLogger(__name__)


def fresh_run() -> dict:
    return {
        "history": [],
        "state": {"epoch": 0, "best": math.inf, "best_epoch": -1, "bad": 0, "best_state": None},
        "elapsed": 0.0,
        "stopped_at": None,  # perf_counter time the seed stopped training (None: training)
    }


def finished(state: dict, config: FitConfig) -> bool:
    return state["bad"] >= config.patience or state["epoch"] >= config.epochs


def resume(seats, stack, opt, config, device) -> list[dict]:
    """Each seat's run state: from its checkpoint (module, optimiser and generator state
    loaded) or fresh; see :func:`train_loops` for when checkpoints are used."""
    saved = []
    for seat in seats:
        ck = None
        if seat.ckpt is not None and seat.ckpt.exists():
            ck = load_checkpoint(seat.ckpt, device)
            if ck.get("fingerprint") != seat.fingerprint:
                log.warning("ignoring checkpoint %s of a different config or dataset", seat.ckpt)
                ck = None
        saved.append(ck)
    open_epochs = {
        ck["state"]["epoch"] for ck in saved if ck is not None and not finished(ck["state"], config)
    }
    n_open = sum(ck is None or not finished(ck["state"], config) for ck in saved)
    n_open_saved = sum(ck is not None and not finished(ck["state"], config) for ck in saved)
    if len(open_epochs) > 1 or 0 < n_open_saved < n_open:
        log.warning(
            "the unfinished seeds' checkpoints are at different epochs (%s); those seeds "
            "start afresh", sorted(open_epochs) or [0],
        )  # fmt: skip
        saved = [ck if ck is not None and finished(ck["state"], config) else None for ck in saved]
    runs, opt_states = [], []
    for s, (seat, ck) in enumerate(zip(seats, saved, strict=True)):
        run = fresh_run()
        opt_state = None
        if ck is not None:
            stack.load_state_dict(s, ck["module"])
            # the state was loaded onto the fit's device; the generator is a CPU one
            seat.generator.set_state(ck["generator"].cpu())
            run.update(history=ck["history"], state=ck["state"], elapsed=ck.get("elapsed", 0.0))
            if not finished(ck["state"], config):
                opt_state = ck["optimizer"]
            log.info("resuming from %s at epoch %d", seat.ckpt, ck["state"]["epoch"])
        runs.append(run)
        opt_states.append(opt_state)
    stack.load_optimizer_states(opt, opt_states)
    return runs


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


def save_checkpoint(path, module_state, opt_state, generator, history, state, fingerprint, elapsed):
    # generator state is a uint8 tensor, everything else tensors, numbers, str, lists
    # and dicts: the file loads with weights_only=True
    payload = {
        "module": module_state,
        "optimizer": opt_state,
        "generator": generator.get_state(),
        "history": history,
        "state": state,
        "fingerprint": fingerprint,
        "elapsed": elapsed,
    }
    with atomic_file(path) as tmp:
        torch.save(payload, tmp)
