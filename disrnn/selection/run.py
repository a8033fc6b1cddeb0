"""``select``: fit the grid of candidates on one dataset, score them on the validation
trials and decide how many modules it supports (:mod:`disrnn.selection.rule`).

    select("dataset.nc", "results/s/selection", SelectConfig(ranks=(4, 6), seeds=2))

The steps: an lrRNN for every rank K and seed (:func:`disrnn.fit.fit`); the rank by the
rule's first step; the lrRNN of rank K - 1, the rule's likelihood bar, when the grid
lacks it (``role`` ``reference`` in candidates.csv); then a DisRNN for every partition of the selected rank (or of every
rank, ``partitions_at="all"``) and seed, each started from the lrRNN of its rank and
seed: that lrRNN is the beta = 0 fit its rotation initialisation would train itself
(``init_from``), so it is fitted once per rank and seed, not once per partition. Every
candidate is scored by :func:`disrnn.selection.score.score_fit`, every partition's seeds
by their agreement (:func:`disrnn.selection.evidence.group_agreement`); the folder
(:mod:`disrnn.selection.folder`) is written atomically.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from disrnn._atomic import atomic_dir, writer_lock
from disrnn._outputs import check_output
from disrnn.evaluation.alignment import flatten_latents
from disrnn.evaluation.inputs import session_id
from disrnn.fit.config import FitConfig
from disrnn.fit.folder import load_fit
from disrnn.fit.loop import DivergenceError
from disrnn.fit.tensors import load_input
from disrnn.fit.train import fit, fit_seeds
from disrnn.selection.config import SelectConfig
from disrnn.selection.evidence import group_agreement
from disrnn.selection.folder import write_selection
from disrnn.selection.rule import (
    REFERENCE,
    RULE,
    SCORE,
    choose_rank,
    decide,
    partition_label,
)  # fmt: skip
from disrnn.selection.score import SCORES, score_fit, val_latents

__all__ = ["select"]

log = logging.getLogger(__name__)


def select(
    dataset: xr.Dataset | str | os.PathLike,
    out_dir: str | os.PathLike,
    config: SelectConfig | None = None,
    fit_options: Mapping | None = None,
    method_options: Mapping[str, Mapping] | None = None,
    device: str = "auto",
    session: str | None = None,
    force: bool = False,
) -> Path:
    """Fit, score and decide; write the selection folder ``out_dir``.

    Args:
        dataset: a binned Dataset (with ``train`` and ``val`` trials) or its path.
        out_dir: the selection folder (candidates.csv, selection.json, fits/).
        config: the grid (default ``SelectConfig()``).
        fit_options: FitConfig options of every candidate (as config.yaml's ``fit:``;
            ``groups`` is the candidate's own; a DisRNN's ``epochs`` is ``config.epochs``
            when set).
        method_options: per method (``lrRNN``, ``DisRNN``) options on top, e.g.
            ``{"DisRNN": {"beta": 0.5}}``.
        device: ``auto`` | ``cpu`` | ``cuda``.
        session: the id selection.json records (default: the dataset attrs' ``session``,
            else the file stem), by which the summary report lists it.
        force: replace ``out_dir`` even when it is not a previous selection folder.
    Returns:
        out_dir as a Path.
    Raises:
        ValueError: a bad option (FitConfig's message), a dataset without ``val`` trials,
            an ``out_dir`` that is or holds the dataset. FileExistsError: ``out_dir``
            exists and is not a selection folder. OutputLockedError: being written.
    """
    config = SelectConfig() if config is None else config
    if not isinstance(config, SelectConfig):
        raise TypeError(f"config must be a SelectConfig, got {type(config).__name__}")
    out_dir = Path(out_dir)
    check_output(out_dir, "selection", inputs=(dataset,), force=force)
    with writer_lock(out_dir, "selection folder"):
        t0 = time.perf_counter()
        ds, source = load_input(dataset)
        path = Path(dataset) if isinstance(dataset, str | os.PathLike) else None
        if not (ds["split"].values == "val").any():
            raise ValueError("model selection scores the 'val' trials; the dataset has none")
        grid = _Grid(dataset, ds, config, dict(fit_options or {}), dict(method_options or {}),
                     device)  # fmt: skip
        grid.fit_config("DisRNN", (1, 1))  # a bad option fails before any fit
        with atomic_dir(out_dir) as tmp:
            rows = grid.run(tmp)
            decision = decide(pd.DataFrame(rows))
            meta = {
                "rule": RULE,
                "session": session_id(ds, path, session),
                "config": config.to_dict(),
                "fit_options": grid.fit_options,
                "method_options": grid.method_options,
                "dataset": source,
                "seconds": time.perf_counter() - t0,
            }
            write_selection(tmp, rows, decision, meta)
    log.info("selection %s: %s", out_dir, decision["sentence"])
    return out_dir


@dataclasses.dataclass
class _Grid:
    """The candidates of one selection and how each is fitted and scored."""

    dataset: xr.Dataset | str | os.PathLike
    ds: xr.Dataset
    config: SelectConfig
    fit_options: dict
    method_options: dict
    device: str

    def fit_config(self, method: str, groups: tuple[int, ...]) -> FitConfig:
        opts = {**self.fit_options, **self.method_options.get(method, {}), "groups": groups}
        if self.config.epochs is not None and method != "lrRNN":
            opts["epochs"] = self.config.epochs  # lrRNN: see SelectConfig.epochs
        return FitConfig.from_options(method, opts)

    def run(self, folder: Path) -> list[dict]:
        """Every candidate's row: the lrRNN ranks, then the partitions (see the module)."""
        seeds = self.config.seed_list
        rows = [r for k in self.config.ranks for r in self.candidates(folder, "lrRNN", (k,), seeds)]
        ranks = self.config.ranks
        if self.config.partitions_at == "selected":
            ranks = (choose_rank(pd.DataFrame(rows))["rank"],)
        for k in ranks:
            if k > 1 and self.config.partitions_of(k) and k - 1 not in self.config.ranks:
                # the rule's likelihood bar: lrRNN at K - 1, outside the rank grid
                rows += [{**r, "role": REFERENCE}
                         for r in self.candidates(folder, "lrRNN", (k - 1,), seeds)]  # fmt: skip
            for p in self.config.partitions_of(k):
                starts = [folder / _fit_dir("lrRNN", (k,), s) for s in seeds]
                part = self.candidates(folder, "DisRNN", p, seeds, starts)
                agreement = self.agreement(folder, part)
                rows += [{**r, "agreement": agreement} for r in part]
        return rows

    def agreement(self, folder: Path, rows: list[dict]) -> float:
        """:func:`disrnn.selection.evidence.group_agreement` of one partition's fitted
        seeds (NaN with fewer than two)."""
        fits = [load_fit(folder / r["fit_dir"]) for r in rows if np.isfinite(r[SCORE])]
        if len(fits) < 2:
            return float("nan")
        latents = [flatten_latents(*val_latents(f, self.ds)) for f in fits]
        return group_agreement(latents, fits[0].latent_group)

    def candidates(self, folder: Path, method: str, groups, seeds, starts=None) -> list[dict]:
        """Fit one candidate's seeds together (:func:`disrnn.fit.train.fit_seeds`) into
        ``folder/fits/...`` and score each; a seed whose start is missing gets NaN
        scores. When the batch diverges, each seed is fitted alone, so one diverging
        seed costs only its own row."""
        starts = [None] * len(seeds) if starts is None else list(starts)
        ready = [(s, st) for s, st in zip(seeds, starts, strict=True)
                 if st is None or (st / "weights.pt").is_file()]  # fmt: skip
        rows = {s: self.candidate(folder, method, groups, s, st)  # "no start" rows
                for s, st in zip(seeds, starts, strict=True) if (s, st) not in ready}  # fmt: skip
        if ready:
            t0 = time.perf_counter()
            try:
                fit_seeds(
                    self.dataset, self.fit_config(method, groups),
                    [folder / _fit_dir(method, groups, s) for s, _ in ready], [s for s, _ in ready],
                    device=self.device, init_from=[st for _, st in ready], progress=False,
                )  # fmt: skip
            except DivergenceError:
                for s, st in ready:
                    rows[s] = self.candidate(folder, method, groups, s, st)
            else:
                share = (time.perf_counter() - t0) / len(ready)
                for s, st in ready:
                    rows[s] = self.candidate(folder, method, groups, s, st, fit_seconds=share)
        return [rows[s] for s in seeds]

    def candidate(
        self, folder: Path, method: str, groups, seed: int, init_from=None, fit_seconds=None
    ) -> dict:
        """Fit one candidate into ``folder/fits/...`` (unless ``fit_seconds`` is given:
        the folder is already fitted, in that many seconds) and score it (NaN scores when
        it diverged or its start did)."""
        rel = _fit_dir(method, groups, seed)
        row = {"method": method, "rank": sum(groups), "partition": partition_label(groups),
               "seed": seed, "fit_dir": rel.as_posix()}  # fmt: skip
        if init_from is not None and not (init_from / "weights.pt").is_file():
            return {**row, **dict.fromkeys(SCORES, float("nan")), "stop_reason": "no start"}
        t0 = time.perf_counter()
        if fit_seconds is None:
            try:
                fit(self.dataset, self.fit_config(method, groups), folder / rel, seed=seed,
                    device=self.device, init_from=init_from, progress=False)  # fmt: skip
            except DivergenceError as err:
                log.warning(
                    "select: %s %s seed %d diverged: %s", method, row["partition"], seed, err
                )
                return {**row, **dict.fromkeys(SCORES, float("nan")), "stop_reason": "diverged"}
            fit_seconds = time.perf_counter() - t0
        f = load_fit(folder / rel)
        scores = score_fit(f, self.ds, seed=0)
        info = f.info
        row.update(scores, fit_seconds=fit_seconds, epochs=info.get("epochs_run"),
                   best_epoch=info.get("best_epoch"), stop_reason=info.get("stop_reason"))  # fmt: skip
        log.info(
            "select: %s %s seed %d: val LL per bin %.4f, PC %s (%.1f s)", method,
            row["partition"], seed, scores["val_ll_per_bin"], _fmt(scores["val_pc"]),
            row["fit_seconds"],
        )  # fmt: skip
        return row


def _fit_dir(method: str, groups, seed: int) -> Path:
    return Path("fits") / method / partition_label(groups) / f"seed{seed}"


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"
