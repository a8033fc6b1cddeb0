"""``fit(...)``: one method, one seed, one dataset -> one fit folder; ``fit_seeds(...)``:
several seeds of one method, trained together, -> one folder each.

    fit(dataset, FitConfig.from_options("DisRNN", {}), "results/fits/x/seed0", seed=0)
    fit_seeds(dataset, config, [f"results/fits/x/seed{s}" for s in (0, 1, 2)], [0, 1, 2])

The steps: check the data and resolve the config (``disrnn.fit.tensors``,
``disrnn.fit.config``); train ``config.restarts`` initialisations, each optionally from
the PC-rotated beta = 0 fit (``disrnn.fit.rotation``), with the one loop
(``disrnn.fit.loop``), and keep the lowest selection objective
(``disrnn.fit.objective``); or, for a post-hoc method, transform an lrRNN
(``disrnn.fit.posthoc``); then write the fit folder (``disrnn.fit.folder``).

Training data: the bins of the ``train`` trials, flattened to (bin, unit) with their
history features h_t precomputed on the device; early stopping on the ``val`` trials.
While training, a checkpoint lives beside the folder as ``.<folder name>.checkpoint.pt``;
``fit`` on the same folder, config, seed and data resumes from it and gives the same
result as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from disrnn._atomic import writer_lock
from disrnn._outputs import check_output
from disrnn.fit.config import POSTHOC_METHODS, FitConfig
from disrnn.fit.folder import build_module, write_fit
from disrnn.fit.loop import EpochCallback, Seat, train_loops
from disrnn.fit.objective import selection_objective
from disrnn.fit.posthoc import load_start, posthoc_fit
from disrnn.fit.rotation import pc_rotations, rotate_latents, search_size
from disrnn.fit.tensors import (
    FitData,
    bin_width,
    check_values,
    dataset_kind,
    load_input,
    prepare,
    silent_units,
)
from disrnn.fit.threads import threads_for

__all__ = ["fit", "fit_seeds", "resolve_device", "restart_seed"]

log = logging.getLogger(__name__)


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


def restart_seed(seed: int, restart: int) -> int:
    """Torch seed of restart ``restart`` of a fit with ``seed`` (restart 0: ``seed``)."""
    if restart == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(restart)]).generate_state(1)[0])


def fit(
    dataset: xr.Dataset | str | os.PathLike,
    config: FitConfig,
    out_dir: str | os.PathLike,
    seed: int = 0,
    device: str = "auto",
    init_from: str | os.PathLike | None = None,
    progress: bool = True,
    on_epoch: EpochCallback | None = None,
    force: bool = False,
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
            it an lrRNN is trained here first with the same seed); for a rotation-init fit
            (``init="rotation"``, beta > 0, several groups): the lrRNN of its rank whose
            latents are rotated, instead of training the beta = 0 objective here.
        progress: show a tqdm progress bar.
        on_epoch: called as ``on_epoch(epoch)`` after each finished (and checkpointed)
            training epoch of every phase and restart (e.g. to report progress).
        force: replace ``out_dir`` even when it is not a previous fit folder
            (:func:`disrnn._outputs.check_output`).
    Returns:
        out_dir as a Path.
    Raises:
        ValueError: bad dataset (no or unknown ``split`` labels; activity the likelihood
            or kind does not allow: :func:`disrnn.fit.tensors.check_values`), device, or
            init_from fit; an ``out_dir`` that is or holds an input; DivergenceError:
            NaN/inf loss. FileExistsError: ``out_dir`` exists and is not a fit folder.
            OutputLockedError: another process is writing ``out_dir``.

    Units without a spike in the training bins are fitted with a logged warning naming
    them (and listed in fit_info.json ``silent_units``).
    """
    return fit_seeds(
        dataset, config, [out_dir], [seed], device, [init_from], progress, on_epoch, force
    )[0]


def fit_seeds(
    dataset: xr.Dataset | str | os.PathLike,
    config: FitConfig,
    out_dirs: list[str | os.PathLike],
    seeds: list[int],
    device: str = "auto",
    init_from: list[str | os.PathLike | None] | None = None,
    progress: bool = True,
    on_epoch: EpochCallback | None = None,
    force: bool = False,
) -> list[Path]:
    """Fit ``config.method`` with several seeds on one dataset, the seeds trained together.

    Seed s (``seeds[s]``) gives the folder ``out_dirs[s]``, as ``fit(dataset, config,
    out_dirs[s], seeds[s], device, init_from[s])`` would: its own initial weights, batch
    order, noise, early stopping and checkpoint. The networks of a trained method are
    stacked along a seed dimension and take their optimiser steps together
    (:mod:`disrnn.fit.stack`; the rotation search of every seed runs as one batch too),
    so S seeds cost far less than S fits; the numbers agree with lone fits to float
    rounding (batched matrix products; one seed is a lone fit exactly). Post-hoc
    methods transform each seed's lrRNN in turn. ``fit_info.json`` records
    ``seeds_together`` and, in ``seconds``, each seed's share of the wall time
    (``batch_seconds`` is the whole).

    Args:
        out_dirs, seeds: one per seed (same length, no repeats); init_from: one per seed
            (None: none for any); the rest as :func:`fit`.
    Returns:
        the fit folders as Paths, in order.
    Raises:
        ValueError: out_dirs and seeds of different lengths, repeated seeds or folders;
            otherwise as :func:`fit` (every folder is checked before any training).
    """
    out_dirs = [Path(d) for d in out_dirs]
    seeds = [int(s) for s in seeds]
    init_from = [None] * len(seeds) if init_from is None else list(init_from)
    if not seeds or len(out_dirs) != len(seeds) or len(init_from) != len(seeds):
        raise ValueError(
            f"fit_seeds needs one out_dir and one init_from per seed; got {len(seeds)} "
            f"seeds, {len(out_dirs)} out_dirs and {len(init_from)} init_from"
        )
    if len(set(seeds)) != len(seeds) or len({d.resolve() for d in out_dirs}) != len(out_dirs):
        raise ValueError(f"fit_seeds needs distinct seeds and folders, got seeds {seeds}")
    for out_dir, start in zip(out_dirs, init_from, strict=True):
        check_output(out_dir, "fit", inputs=(dataset, start), force=force)
    with contextlib.ExitStack() as locks:
        for out_dir in out_dirs:
            locks.enter_context(writer_lock(out_dir, "fit folder"))
        if resolve_device(device).type == "cpu":
            # the whole fit, not only its training steps, on one thread per seed: a lone
            # fit's numbers then do not depend on the threads torch was given
            locks.enter_context(threads_for(len(seeds)))
        return _fit(dataset, config, out_dirs, seeds, device, init_from, progress, on_epoch)


def _fit(dataset, config, out_dirs, seeds, device, init_from, progress, on_epoch) -> list[Path]:
    t_start = time.perf_counter()
    if not isinstance(config, FitConfig):
        raise TypeError(f"config must be a FitConfig, got {type(config).__name__}")
    ds, source = load_input(dataset)
    kind = dataset_kind(ds)
    config = config.resolve(kind, bin_width(ds))
    check_values(ds, config.likelihood)
    dev = resolve_device(device)
    config, train, val = _train_val(ds, config, dev)
    silent = _warn_silent(train)
    base: dict = {"device": str(dev), "torch_threads": torch.get_num_threads()}
    if config.method in POSTHOC_METHODS:
        results = [
            posthoc_fit(config, train, val, seed, start, progress)
            for seed, start in zip(seeds, init_from, strict=True)
        ]
    else:
        if any(start is not None for start in init_from) and not _rotated(config):
            log.warning(
                "init_from is used by post-hoc methods and the rotation init only; %s "
                "ignores it", config.method,
            )  # fmt: skip
            init_from = [None] * len(seeds)
        if any(start is None for start in init_from) and any(init_from):
            raise ValueError("fit_seeds: give init_from for every seed or for none")
        run = _Run(config, train, val, seeds, source, out_dirs, progress, on_epoch, init_from)
        results = run.restarts()
    wall = time.perf_counter() - t_start
    for seed, out_dir, start, (module, history, extra) in zip(
        seeds, out_dirs, init_from, results, strict=True
    ):
        info = {**base, **extra}
        info.update(
            seconds=wall / len(seeds),
            epochs=info.get("epochs_run"),
            n_train_bins=train.n_bins,
            silent_units=silent,
            n_val_bins=0 if val is None else val.n_bins,
        )
        if len(seeds) > 1:
            info.update(seeds_together=len(seeds), batch_seconds=wall)
        meta = {
            **config.to_dict(),
            "seed": int(seed),
            "dataset": source,
            "init_from": None if start is None else str(start),
            "kind": kind,
            "units": [
                int(u) if np.issubdtype(type(u), np.integer) else str(u) for u in train.units
            ],
            "n_units": int(train.n_units),
            "history": config.history,
            "input": train.u is not None,
        }
        write_fit(out_dir, module, meta, history, info)
        if config.method not in POSTHOC_METHODS:
            for r in range(config.restarts):
                _checkpoint_path(out_dir, r).unlink(missing_ok=True)
                _checkpoint_path(out_dir, r, "-pretrain").unlink(missing_ok=True)
    return out_dirs


def _train_val(ds: xr.Dataset, config: FitConfig, dev):
    """(config with ``epochs``/``patience`` resolved for the training bins, the train
    FitData, the val FitData or None when there are no val bins).

    Raises:
        ValueError: fewer than 2 usable training bins.
    """
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
    return config, train, val


def _warn_silent(train: FitData) -> list:
    """Warn about (and return) the units with no spike in the training bins."""
    silent = [u.item() for u in silent_units(train)]
    if silent:
        shown = ", ".join(map(str, silent[:20])) + (" ..." if len(silent) > 20 else "")
        log.warning(
            "%d of %d units have no spike in the training bins; they are fitted anyway "
            "(their predicted rates go to 0): units %s",
            len(silent),
            train.n_units,
            shown,
        )
    return silent


def _rotated(config: FitConfig) -> bool:
    """The fit starts from the PC-rotated beta = 0 fit (``init="rotation"``, a PC penalty)."""
    return config.init == "rotation" and config.beta > 0 and len(config.groups) > 1


def _checkpoint_path(out_dir: Path, restart: int, phase: str = "") -> Path:
    suffix = ("" if restart == 0 else f"-restart{restart}") + phase
    return out_dir.with_name(f".{out_dir.name}.checkpoint{suffix}.pt")


@dataclasses.dataclass
class _Run:
    """The restarts of the trained fits of S seeds (what ``_fit`` passes to each)."""

    config: FitConfig
    train: FitData
    val: FitData | None
    seeds: list[int]
    source: dict
    out_dirs: list[Path]
    progress: bool
    on_epoch: EpochCallback | None
    init_from: list  # per seed: an lrRNN (the beta = 0 fit to rotate) or None

    def restarts(self) -> list[tuple[torch.nn.Module, list[dict], dict]]:
        """Train ``config.restarts`` initialisations of every seed; keep, per seed, the
        lowest selection objective.

        Restart r of a seed is seeded with :func:`restart_seed` (restart 0 with the seed
        itself, so one restart is the plain fit); the seeds' restart r trains together;
        each keeps its own checkpoint until the fit is written. Returns one (module,
        loss history of the kept restart, info) per seed.
        """
        config = self.config
        select_on = self.val if self.val is not None else self.train
        best: list = [None] * len(self.seeds)
        runs: list[list] = [[] for _ in self.seeds]
        for r in range(config.restarts):
            for s, (module, history, info) in enumerate(self.one(r)):
                seed = self.seeds[s]
                if config.restarts > 1:
                    score = selection_objective(
                        module, select_on, config.beta, seed, config.kl_weight
                    )
                else:
                    score = {"objective": float("nan")}
                runs[s].append({"restart": r, "seed": restart_seed(seed, r), **score, **info})
                if best[s] is None or score["objective"] < best[s][0]["objective"]:
                    best[s] = (score, module, history, info, r)
        out = []
        for s, (_, module, history, info, r) in enumerate(best):
            info = {**info, "restart": r, "restarts": runs[s] if config.restarts > 1 else []}
            if config.restarts > 1:
                info["train_seconds"] = sum(run["train_seconds"] for run in runs[s])
            out.append((module, history, info))
        return out

    def one(self, r: int) -> list[tuple[torch.nn.Module, list[dict], dict]]:
        """Restart ``r`` of every seed: build, optionally rotation-initialise, train."""
        config, train = self.config, self.train
        seats = []
        for seed, out_dir, start in zip(self.seeds, self.out_dirs, self.init_from, strict=True):
            rseed = restart_seed(seed, r)
            generator = torch.Generator().manual_seed(rseed)
            module = build_module(config, train.n_units, train.n_bins, train.input_mask, generator)
            module = module.to(train.h.device)
            fingerprint = {
                "config": config.to_dict(),
                "seed": seed,
                "restart": r,
                "data": self.source["activity_sha256"],
                "input": self.source.get("input_sha256"),
            }
            if start is not None:
                fingerprint["init_from"] = str(start)
            seats.append(Seat(module, generator, rseed, _checkpoint_path(out_dir, r), fingerprint))
        pre = None
        if _rotated(config):  # the full objective from the rotated fit, at its own lr
            pre = self.rotation_init(seats, r)
            config = dataclasses.replace(
                config, lr=config.lr * config.finetune_lr_scale, patience=config.finetune_patience
            )
        results = train_loops(seats, self.train, self.val, config, self.progress, self.on_epoch)
        out = []
        for s, (seat, (history, info)) in enumerate(zip(seats, results, strict=True)):
            if pre is not None:
                info = {**info, "pretrain": pre[s]}
            out.append((seat.module, history, info))
        return out

    def rotation_init(self, seats: list[Seat], r: int) -> list[dict]:
        """In place, every seed: train the beta = 0 objective (or take it from its
        ``init_from``, an lrRNN of this rank: the same objective), then rotate the
        latents to the lowest PC. Returns each seed's pre-training info."""
        if self.init_from[0] is not None:
            infos = [
                load_start(seat.module, self.config, self.train, start)
                for seat, start in zip(seats, self.init_from, strict=True)
            ]
        else:
            pre_cfg = dataclasses.replace(self.config, beta=0.0, alpha=0.0)
            pre_seats = [
                dataclasses.replace(
                    seat,
                    ckpt=_checkpoint_path(out_dir, r, "-pretrain"),
                    fingerprint={**seat.fingerprint, "phase": "pretrain"},
                )
                for seat, out_dir in zip(seats, self.out_dirs, strict=True)
            ]
            results = train_loops(
                pre_seats, self.train, self.val, pre_cfg, self.progress, self.on_epoch
            )
            infos = [info for _, info in results]
        t0 = time.perf_counter()
        with torch.no_grad():
            mus = [seat.module.encode(seat.module.features(self.train.h)) for seat in seats]
        search = search_size(self.config.epochs)
        found = pc_rotations(
            mus,
            [float(seat.module.log_sigma) for seat in seats],
            seats[0].module.groups,
            [seat.generator for seat in seats],
            **search,
        )
        seconds = (time.perf_counter() - t0) / len(seats)
        out = []
        for seat, info, (rot, pc) in zip(seats, infos, found, strict=True):
            rotate_latents(seat.module, rot)
            out.append({**info, "rotation_pc": pc, "rotation_seconds": seconds})
        return out
