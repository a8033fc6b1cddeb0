"""Read evaluation folders (and the fit folders beside them) for figures and reports.

An evaluation folder (``disrnn evaluate``) holds ``metrics.json``, ``latents.nc``,
``connectivity.nc``, ``rollout.nc`` and (linear decoders) ``units.nc``; its fit folder holds ``config.json`` and
``losses.csv``. The fit folder is ``metrics.json["fit_dir"]`` when present, else the
workflow's sibling convention ``results/{session}/fits/{method}/seed{seed}/`` for
``results/{session}/evals/{method}/seed{seed}/``.

Nothing here computes science: it only reads what the pipeline saved, lazily (the
NetCDF files are opened only when a figure needs them).
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from disrnn.data.io import DIMS
from disrnn.report.reference_keys import as_fit_keys

REFERENCE_METHOD = "DisRNN"

# The summary's key metrics: (label, exact flattened keys tried in order, key patterns).
KEY_METRICS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("co-bps", ("co_bps", "cobps", "co-bps", "test.co_bps"), (r"co.?bps",)),
    # the number NLB compares: a fit's whole-trial posterior, the reference's NLB smoothing
    ("co-bps, whole trial (smoothing posterior; NLB's smoothing)", ("co_bps_smoothed",), ()),
    (
        "test log-likelihood (per bin, per neuron)",
        (
            "test_ll_per_bin_neuron",
            "test_ll",
            "ll_per_bin_per_neuron",
            "log_likelihood_per_bin_neuron",
            "test_log_likelihood",
            "ll_per_bin",
            "test_ll_per_bin",
        ),
        (r"^(test_)?(ll|log_?likelihood)",),
    ),
    ("PC", ("pc", "PC", "partial_correlation"), (r"^pc$", r"^pc[._]")),
    (
        "group latent R²",
        ("group_latent_r2", "latent_r2_group", "group_r2"),
        (r"group.*latent.*r2", r"latent.*group.*r2"),
    ),
    (
        "behavior R²",
        ("behavior_r2", "behavior_r2.all", "behaviour_r2"),
        (r"behavio.?r.*r2.*all", r"behavio.?r.*r2"),
    ),
)


# Shown in the session report's main tables after the key metrics (when present); every
# other metric goes to the full tables.
HEADLINE_METRICS: tuple[tuple[str, str], ...] = (
    # NLB's PSTH R^2 of the held-out units, of the key co-bps' two kinds (one-step and
    # whole trial)
    ("held-out PSTH R²", "co_psth_r2"),
    ("held-out PSTH R², whole trial", "co_psth_r2_smoothed"),
    ("bits per spike (all units)", "bps"),
    ("reconstruction R²", "recon_r2"),
    ("reconstruction R², same bin (PCA reference)", "recon_r2_same_bin"),
    ("predicted vs true rates R²", "rate_r2_true"),
    ("TC", "tc"),
    ("component latent R²", "component_latent_r2"),
    ("W agreement (Pearson r)", "W_pearson"),
    ("sub-connectivity agreement (Pearson r)", "Wsub_pearson"),
    ("J energy off the group blocks", "J_offblock_frac"),
    ("J spectral radius", "J_spectral_radius"),
    ("free-run mean rate r", "freerun_rate_pearson"),
    ("free-run PSTH R²", "freerun_psth_r2"),
    ("free-run correlation r", "freerun_corr_pearson"),
    # condition decoding (disrnn.evaluation.decoding): fraction of test trials whose
    # condition a logistic regression on the latents gets right; chance = the most
    # common condition's share of the test trials
    ("condition decoded from the latents (test accuracy)", "condition_accuracy"),
    ("condition decoded per bin (mean test accuracy)", "condition_accuracy_time_mean"),
    ("condition chance (most common test condition)", "condition_chance"),
)


def natural_key(key: str):
    """Sort ``kstep_r2.16`` after ``kstep_r2.2``."""
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", key)]


def flatten_metrics(metrics: dict, prefix: str = "") -> dict[str, float | None]:
    """Flatten nested dicts of numbers into ``{"a.b": value}``.

    Booleans, strings and lists are dropped (lists of numbers become ``a.0``, ``a.1``...).
    ``None`` stays ``None`` (the metric does not apply); non-finite numbers become ``None``.
    """
    out: dict[str, float | None] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_metrics(value, prefix=f"{name}."))
        elif isinstance(value, list | tuple):
            if value and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
                out.update(flatten_metrics(dict(enumerate(value)), prefix=f"{name}."))
        elif value is None:
            out[name] = None
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value) if math.isfinite(value) else None
    return out


# Keys in metrics.json that identify a run rather than measure it.
_ID_KEYS = {
    "seed",
    "eval_seed",
    "epochs",
    "best_epoch",
    "n_trials",
    "n_units",
    "n_heldout",
    "n_test_trials",
    "n_test_bins",
    "history",
    "bin_width",
    "dandiset",
    "dandiset_version",
}
_ID_PREFIXES = ("pc_partition.",)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{str(path)!r} is not valid JSON: {err}") from err


@dataclass
class EvalResult:
    """One evaluation folder and its fit folder, read lazily.

    Attributes:
        path: the evaluation folder.
        metrics: ``metrics.json`` as written.
        values: numeric metrics, flattened (``{"behavior_r2.hand_vel.all": 0.7}``);
            ``None`` where a metric does not apply; a reference's under the fit keys
            they compare with (:mod:`disrnn.report.reference_keys`).
        session: ``metrics.json``'s ``session`` (``"session"`` when it has none);
        method, seed: from ``metrics.json``, else the fit's ``config.json``, else the
            path ``.../evals/{method}/seed{seed}``.
        fit_dir: the fit folder, or ``None`` when it cannot be found.
    """

    path: Path
    metrics: dict
    values: dict[str, float | None]
    session: str
    method: str
    seed: int | None
    fit_dir: Path | None
    _cache: dict = field(default_factory=dict, repr=False)

    # -- saved arrays -------------------------------------------------------------------
    def _nc(self, name: str) -> xr.Dataset | None:
        if name not in self._cache:
            p = self.path / name
            if p.exists():
                with xr.open_dataset(p, engine="h5netcdf") as ds:
                    self._cache[name] = ds.load()
            else:
                self._cache[name] = None
        return self._cache[name]

    @property
    def latents(self) -> xr.DataArray | None:
        """(trial, time, latent) inferred latents with coords latent_group and split."""
        ds = self._nc("latents.nc")
        if ds is None:
            return None
        return _pick(ds, ("latents", "latent", "z", "mean"), ("trial", "time", "latent"))

    @property
    def latents_dataset(self) -> xr.Dataset | None:
        """All of ``latents.nc`` (with ``true_latents``/``aligned_latents`` when known)."""
        return self._nc("latents.nc")

    @property
    def predicted(self) -> xr.DataArray | None:
        """(trial, time, unit) one-step-ahead predicted mean activity, if saved."""
        for fname in ("latents.nc", "rates.nc", "predictions.nc", "rollout.nc"):
            ds = self._nc(fname)
            if ds is None:
                continue
            da = _pick(
                ds,
                ("predicted", "rates", "prediction", "predicted_rates", "pred_rates"),
                DIMS,
                strict=True,
            )
            if da is not None:
                return da
        return None

    @property
    def connectivity(self) -> xr.Dataset | None:
        """``connectivity.nc``: W (unit, unit), J (latent, latent), per-group W_g, eigenvalues."""
        return self._nc("connectivity.nc")

    @property
    def units(self) -> xr.Dataset | None:
        """``units.nc``: the unit map (per unit and group shares, drive, dominant group)."""
        return self._nc("units.nc")

    @property
    def rollout(self) -> xr.Dataset | None:
        """``rollout.nc``: free-running predictions and/or their statistics."""
        return self._nc("rollout.nc")

    @functools.cached_property
    def config(self) -> dict | None:
        if self.fit_dir is not None and (self.fit_dir / "config.json").exists():
            return _read_json(self.fit_dir / "config.json")
        return None

    @functools.cached_property
    def losses(self):
        """``losses.csv`` of the fit as a pandas DataFrame (epoch, split, terms), or None."""
        import pandas as pd

        if self.fit_dir is None or not (self.fit_dir / "losses.csv").exists():
            return None
        return pd.read_csv(self.fit_dir / "losses.csv")

    @functools.cached_property
    def fit_info(self) -> dict | None:
        if self.fit_dir is not None and (self.fit_dir / "fit_info.json").exists():
            return _read_json(self.fit_dir / "fit_info.json")
        return None

    def metric(self, key: str) -> float | None:
        return self.values.get(key)


def _pick(ds: xr.Dataset, names, dims, strict: bool = False) -> xr.DataArray | None:
    for n in names:
        if n in ds.data_vars:
            return ds[n]
    if strict:
        return None
    for da in ds.data_vars.values():
        if tuple(da.dims) == tuple(dims):
            return da
    return None


def load_eval(eval_dir: str | os.PathLike) -> EvalResult:
    """Read one evaluation folder (metrics now, arrays on first use).

    Raises:
        FileNotFoundError: the folder or its ``metrics.json`` does not exist.
    """
    path = Path(eval_dir)
    mpath = path / "metrics.json"
    if not mpath.exists():
        raise FileNotFoundError(
            f"no metrics.json in {str(path)!r}; run `disrnn evaluate FITDIR DATASET --out {path}`"
        )
    metrics = _read_json(mpath)
    values = {
        k: v
        for k, v in flatten_metrics(metrics).items()
        if k not in _ID_KEYS and not k.startswith(_ID_PREFIXES)
    }

    fit_dir = None
    if metrics.get("fit_dir"):
        fit_dir = Path(metrics["fit_dir"])
        if not fit_dir.is_absolute() and not fit_dir.exists():
            fit_dir = (path / fit_dir).resolve()
    else:
        parts = path.resolve().parts
        if len(parts) >= 3 and parts[-3] == "evals":
            fit_dir = Path(*parts[:-3], "fits", *parts[-2:])
    if fit_dir is not None and not fit_dir.exists():
        fit_dir = None

    config = {}
    if fit_dir is not None and (fit_dir / "config.json").exists():
        config = _read_json(fit_dir / "config.json")

    parts = path.resolve().parts
    method = metrics.get("method") or config.get("method")
    if not method:
        method = parts[-2] if len(parts) >= 2 else path.name
    seed = metrics.get("seed", config.get("seed"))
    if seed is None:
        m = re.fullmatch(r"seed[_-]?(\d+)", path.name)
        seed = int(m.group(1)) if m else None
    # the evaluation records its session (the workflow passes its config's id)
    session = metrics.get("session") or "session"
    result = EvalResult(
        path=path,
        metrics=metrics,
        values=as_fit_keys(str(method), values),
        session=str(session),
        method=str(method),
        seed=None if seed is None else int(seed),
        fit_dir=fit_dir,
    )
    if config:
        result.__dict__["config"] = config
    return result


def check_comparable(
    results: list[EvalResult], activity_sha256: str | None = None, by_session: bool = True
) -> None:
    """Refuse evaluations a report cannot put side by side.

    Within a session (each ``EvalResult.session``, or all of ``results`` as one when not
    ``by_session``: a session report), each (method, seed) is evaluated once (a second
    evaluation of the same fit would count as another seed) and every evaluation is of
    one dataset: the ``activity_sha256`` metrics.json records (else its ``dataset`` path;
    evaluations that record neither are not compared), equal to ``activity_sha256`` when
    it is given (the session report's dataset).

    Raises:
        ValueError: naming the two evaluation folders that clash.
    """

    def session(r):
        return r.session if by_session else None

    seen: dict = {}
    for r in results:
        key = (session(r), r.method, r.seed)
        if key in seen:
            raise ValueError(
                f"{seen[key].path} and {r.path} are both evaluations of {r.method} seed "
                f"{r.seed}; a seed counts once in a report: give one of them"
            )
        seen[key] = r
    first: dict = {}
    for r in results:
        for name in ("activity_sha256", "dataset"):
            value = r.metrics.get(name)
            if not value:
                continue
            other = first.setdefault((session(r), name), (value, r))
            if other[0] != value:
                raise ValueError(
                    f"{other[1].path} and {r.path} evaluate different datasets ({name} "
                    f"{other[0]!r} vs {value!r}) for one report"
                    + (f" session {r.session!r}" if by_session else "")
                    + "; a report compares the evaluations of one dataset per session"
                )
            break
    if activity_sha256 is not None:
        for r in results:
            if r.metrics.get("activity_sha256") not in (None, activity_sha256):
                raise ValueError(
                    f"{r.path} evaluates another dataset than the report's (its activity "
                    f"sha256 {r.metrics['activity_sha256']!r}, the dataset's "
                    f"{activity_sha256!r}); give the dataset its evaluations were run on"
                )


def resolve_key(results: list[EvalResult], exact, patterns) -> str | None:
    """The first flattened metric key present in ``results`` among ``exact``, then
    the first (sorted) key matching one of the regular expressions ``patterns``."""
    keys = set()
    for r in results:
        keys |= {k for k, v in r.values.items() if v is not None}
    for k in exact:
        if k in keys:
            return k
    for pat in patterns:
        hits = sorted(k for k in keys if re.search(pat, k, flags=re.IGNORECASE))
        if hits:
            return min(hits, key=len)
    return None


def key_metrics(results: list[EvalResult]) -> list[tuple[str, str]]:
    """``[(label, flattened key)]`` of the key metrics present in ``results``."""
    out = []
    for label, exact, patterns in KEY_METRICS:
        k = resolve_key(results, exact, patterns)
        if k is not None and k not in [kk for _, kk in out]:
            out.append((label, k))
    return out


def mean_sd(values) -> tuple[float, float, int]:
    """Mean, sample sd (ddof=1; 0 for one value) and count of the finite values."""
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan"), 0
    sd = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return float(arr.mean()), sd, int(arr.size)


def representative(results: list[EvalResult], key: str | None) -> EvalResult:
    """The run whose ``key`` metric is the median over seeds (lowest seed on ties or
    when the metric is missing): the seed a report shows figures of."""
    ordered = sorted(results, key=lambda r: (r.seed is None, r.seed if r.seed is not None else 0))
    if key is None:
        return ordered[0]
    scored = [r for r in ordered if r.values.get(key) is not None]
    if not scored:
        return ordered[0]
    scored.sort(key=lambda r: r.values[key])
    return scored[(len(scored) - 1) // 2]
