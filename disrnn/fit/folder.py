"""The fit folder: its writer, :func:`load_fit` and the :class:`Fit` it loads as.

    f = load_fit("results/fits/x/seed0"); f.latents(ds); f.predict(ds); f.rollout(ds, 50)

A fit folder holds ``config.json`` (the resolved FitConfig's fields, plus seed, dataset,
units, ...), ``fit_info.json``, ``losses.csv`` and ``weights.pt``; it is written
atomically (complete or absent). Also :func:`build_module`, the network of a config,
used by training and by loading alike.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from disrnn._atomic import atomic_dir
from disrnn.data.io import DIMS
from disrnn.fit.config import FitConfig
from disrnn.fit.defaults import rule_of_thumb_log_sigma
from disrnn.fit.objective import TERMS, nll_terms
from disrnn.fit.tensors import first_bin, history_frame, lagged_stack, trial_arrays
from disrnn.models.modules import DisRNN

log = logging.getLogger(__name__)

__all__ = [
    "Fit",
    "load_fit",
    "config_from_meta",
    "build_module",
    "check_input",
    "write_fit",
    "read_losses",
]


def check_input(uses_input: bool, has_input: bool, what: str) -> None:
    """Raise ValueError unless the fit and the dataset agree on having a known ``input``.

    Args:
        uses_input: the fit was trained with an ``input`` variable (config.json ``input``).
        has_input: the dataset at hand has one; what: names the fit in the message.
    """
    if uses_input != has_input:
        raise ValueError(
            f"{what} was trained {'with' if uses_input else 'without'} a known 'input' "
            f"variable but the dataset {'has none' if uses_input else 'has one'}; give the "
            f"dataset {'its input' if uses_input else 'no input'} or refit"
        )


def build_module(
    config: FitConfig,
    n_units: int,
    n_bins: int,
    input_mask: torch.Tensor | None,
    generator: torch.Generator,
) -> DisRNN:
    """A freshly initialised network for ``config``.

    Args:
        n_units: N, all units; n_bins: N_tot, training bins (sigma_q starts at
            sigma_scale * N_tot^(-1/(K+4))); input_mask: (unit,) bool, False for held-out units, which
            the encoder does not see (None: every unit); generator: the initial weights.
    """
    return DisRNN(
        n_units=n_units,
        groups=config.groups,
        likelihood=config.likelihood,
        link=config.link,
        history=config.history,
        learned_kernel=config.kernel == "learned",
        log_sigma=rule_of_thumb_log_sigma(n_bins, config.rank)
        + math.log(config.sigma_scale if config.sigma_scale is not None else 1.0),
        learned_sigma=config.sigma == "learned",
        encoder=config.encoder,
        decoder=config.decoder,
        hidden=config.hidden,
        input_mask=input_mask,
        generator=generator,
    )


def write_fit(out_dir: Path, module, meta: dict, history: list[dict], info: dict) -> None:
    """Write the fit folder atomically: config.json, fit_info.json, losses.csv, weights.pt."""
    import pandas as pd

    with atomic_dir(out_dir) as tmp:
        (tmp / "config.json").write_text(json.dumps(meta, indent=2))
        (tmp / "fit_info.json").write_text(json.dumps(info, indent=2, default=float))
        cols = ["epoch", "split", "lr", "beta", "alpha", *TERMS]
        pd.DataFrame(history, columns=cols).to_csv(tmp / "losses.csv", index=False)
        state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        torch.save(state, tmp / "weights.pt")  # last: a folder with weights.pt is complete


def read_losses(path: Path) -> list[dict]:
    """The rows of a losses.csv ([] when missing)."""
    import pandas as pd

    if not path.exists():
        return []
    return pd.read_csv(path).to_dict("records")


class Fit:
    """A fitted model, as returned by :func:`load_fit` (see docs/design.md).

    Attributes:
        config, seed, path, info (fit_info.json), module (eval mode, cpu),
        groups, latent_group (latent,) int; A (unit, latent), B (latent, unit) (held-out
        columns zero), bias (unit,) = A b + a so the one-step mean is f(W h + bias);
        W = A B (unit, unit); J = B A (latent, latent); A/B/W/J are None for MLP variants;
        uses_input: trained with a known ``input`` u_t, added to every pre-activation (the
        datasets it is applied to must then carry their ``input``, and only then);
        sigma_q, posterior_scale (latent, latent) S: the posterior q(z_t | x) is
        N(mu_t, S S^T), S = sigma_q I for a trained fit and sigma_q M for a post-hoc one
        whose latents are z' = M z + c of its lrRNN's (``latent_map`` M, else None).
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
        self.uses_input = bool(meta.get("input", False))
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
        # a post-hoc fit's latents are z' = M z + c of its lrRNN's, whose posterior
        # N(mu, sigma_q^2 I) they carry along: N(mu', sigma_q^2 M M^T)
        self.latent_map = None if info.get("latent_map") is None else np.asarray(info["latent_map"])
        if self.latent_map is None and self.config.posthoc is not None:
            log.warning(
                "%s: a %s fit written before post-hoc fits kept their latent map; its PC, TC "
                "and sampled rollouts use sigma_q I, not its lrRNN's posterior: fit it again "
                "(snakemake: --forcerun fit_posthoc)", path, self.config.method,
            )  # fmt: skip
        M = np.eye(module.rank) if self.latent_map is None else self.latent_map
        self.posterior_scale = self.sigma_q * M

    def __repr__(self) -> str:
        return f"Fit({self.config.method}, groups={self.groups}, seed={self.seed}, {self.path})"

    # --------------------------------------------------------------------- helpers
    def _arrays(self, ds: xr.Dataset):
        n = ds.sizes.get("unit")
        if n != self.module.n_units:
            raise ValueError(
                f"the dataset has {n} units; this fit was trained on {self.module.n_units}"
            )
        check_input(self.uses_input, "input" in ds, f"the fit {self.path}")
        arr = trial_arrays(ds, self.history)
        th, L = arr["th"], self.history
        # (trial, time - s0, unit); the (trial, time - s0, L, unit) stack is L frames in
        # size, so it is built for 16 trials at a time
        with torch.no_grad():
            h = torch.cat([
                self.module.kernel(torch.from_numpy(lagged_stack(th[i : i + 16], L)))
                for i in range(0, max(th.shape[0], 1), 16)  # a 0-trial dataset: one empty stack
            ])  # fmt: skip
        return arr, h

    def _pad(self, values: np.ndarray, ds: xr.Dataset, dim: str, coords: dict) -> xr.DataArray:
        """Prepend s0 NaN bins: (trial, time - s0, d) -> DataArray (trial, time, d)."""
        s0 = ds.sizes["time"] - values.shape[1]
        pad = np.full((values.shape[0], s0, values.shape[2]), np.nan)
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
        """Posterior means mu_t = B h_t + b: (trial, time, latent); first s0 bins NaN (s0 = L minus the history bins the dataset holds before each window)."""
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
        u = None if arr["u"] is None else torch.from_numpy(arr["u"])
        return arr, self.module.decode(self.module.encode(h), u)

    def predict(self, ds: xr.Dataset) -> xr.DataArray:
        """One-step-ahead mean activity f(A mu_t + a (+ u_t)): (trial, time, unit) expected
        counts per bin (Poisson) or continuous mean; first s0 bins NaN (s0 = L minus the history bins the dataset holds before each window)."""
        _, eta = self._eta(ds)
        with torch.no_grad():
            mean = self.module.mean(eta).double().numpy()
        return self._trial_coords(self._pad(mean, ds, "unit", {"unit": ds["unit"].values}), ds)

    def nll(self, ds: xr.Dataset) -> xr.DataArray:
        """-log p(x_t | z_t = mu_t) per bin and unit in nats (log x! included for counts):
        (trial, time, unit); NaN on the first s0 bins and on bins without an observed history."""
        arr, eta = self._eta(ds)
        x = torch.from_numpy(arr["x"])
        with torch.no_grad():
            out = nll_terms(self.module, x, eta, constant=True).double().numpy()
        out[~arr["valid"]] = np.nan
        return self._trial_coords(self._pad(out, ds, "unit", {"unit": ds["unit"].values}), ds)

    def unit_groups(self, ds: xr.Dataset, split: str = "test") -> xr.Dataset:
        """Which units form each group: per unit (NWB id) and group the share of its
        predicted activity and its drive, its dominant group, and per area the mean
        shares, on the scored bins of ``split``'s trials (the ``units.nc`` of an
        evaluation; :mod:`disrnn.evaluation.unit_maps`). ValueError for an MLP decoder."""
        from disrnn.evaluation.unit_maps import fit_unit_groups

        return fit_unit_groups(self, ds, split)

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
        bins, z_t = mu_t (+ posterior_scale eps when ``sample``), x_t = f(A z_t + a (+ u_t, the
        dataset's known input of bin t)) (or a draw from the Gaussian / Poisson observation
        model when ``sample``); x_t is fed back.

        Args:
            ds: dataset with the same units; its bins before ``start`` (with the history
                bins before the window, ``pre_activity``, when it has them) seed the history.
            n_steps: number of generated bins.
            start: first generated window bin (default and minimum s0 = L - p, p the
                history bins held before the window, :func:`disrnn.fit.tensors.first_bin`).
            sample: draw latents and observations instead of feeding back means.
            generator: torch.Generator for ``sample`` (default: seeded with the fit's seed).
        Returns:
            (trial, time, unit) DataArray of generated activity, time = the bin centres
            from ``start`` on (extended with the bin spacing past the trial's end).
        Raises:
            ValueError: start < s0 or n_steps < 1; input use unlike the fit's; a fit with
            input rolled out past the trial's end (the input there is unknown).
        """
        L = self.history
        s0 = first_bin(ds, L)
        start = s0 if start is None else int(start)
        if start < s0 or start > ds.sizes["time"]:
            raise ValueError(
                f"start must be between {s0} (history L={L} less the {L - s0} history bins "
                f"held before the window) and the trial length, got {start}"
            )
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps}")
        u = self._rollout_input(ds, start, n_steps)  # (trial, time, unit) or None
        if sample and generator is None:
            generator = torch.Generator().manual_seed(self.seed)
        m = self.module
        frame, _, p = history_frame(ds, L)  # (trial, p + time, unit)
        act = torch.from_numpy(frame)
        f0 = start + p  # frame index of the first generated bin
        buf = torch.tanh(act[:, f0 - L : f0].flip(1))  # (trial, L, unit), l = 1 first
        out = torch.empty(act.shape[0], n_steps, act.shape[2])
        sigma = torch.exp(m.log_sigma)
        scale = None if self.latent_map is None else torch.from_numpy(self.posterior_scale)
        for t in range(n_steps):
            mu = m.encode(m.kernel(buf))
            z = mu
            if sample:
                eps = torch.randn(mu.shape, generator=generator)
                z = mu + (sigma * eps if scale is None else eps.to(mu.dtype) @ scale.to(mu.dtype).T)
            mean = m.mean(m.decode(z, None if u is None else u[:, start + t]))
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
            dims=DIMS,
            coords={"trial": ds["trial"].values, "time": t_all, "unit": ds["unit"].values},
        )
        return self._trial_coords(da, ds)

    def _rollout_input(self, ds: xr.Dataset, start: int, n_steps: int) -> torch.Tensor | None:
        """(trial, time, unit) float32 known input of a fit that uses one, else None.

        Raises:
            ValueError: input use unlike the fit's; a rollout past the trial's end with input.
        """
        check_input(self.uses_input, "input" in ds, f"the fit {self.path}")
        if not self.uses_input:
            return None
        if start + n_steps > ds.sizes["time"]:
            raise ValueError(
                f"start + n_steps = {start + n_steps} runs past the trial's "
                f"{ds.sizes['time']} bins, where this fit's known input is undefined"
            )
        return torch.from_numpy(ds["input"].transpose(*DIMS).values.astype(np.float32))


def config_from_meta(meta: dict) -> FitConfig:
    """The FitConfig stored (flat, beside seed/dataset/...) in a fit's config.json."""
    names = {f.name for f in dataclasses.fields(FitConfig)}
    return FitConfig.from_dict({k: v for k, v in meta.items() if k in names})


def _read_json(path: Path) -> dict:
    """The JSON object in ``path``; ValueError naming the file when it is not one."""
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{str(path)!r} is not valid JSON ({err}); the fit folder is damaged: refit it"
        ) from None
    if not isinstance(meta, dict):
        raise ValueError(
            f"{str(path)!r} holds a JSON {type(meta).__name__}, not an object; the fit "
            "folder is damaged: refit it"
        )
    return meta


def _check_finite(state: dict, path: Path) -> None:
    bad = [k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all()]
    if bad:
        raise ValueError(
            f"the weights in {str(path)!r} are not finite (NaN or inf in {', '.join(bad)}); "
            "the fit diverged or the file is damaged: refit it (a smaller --lr or beta helps "
            "a diverging fit)"
        )


def load_fit(path: str | os.PathLike) -> Fit:
    """Load a fit folder written by :func:`fit`.

    Raises:
        FileNotFoundError: no complete fit (``weights.pt``) at ``path``.
        ValueError: ``config.json`` or ``fit_info.json`` is not a JSON object, or a
            weight is NaN or infinite (each message names the file).
    """
    path = Path(path)
    if not (path / "weights.pt").exists():
        raise FileNotFoundError(
            f"no complete fit at {str(path)!r} (weights.pt missing); run `disrnn fit` first"
        )
    meta = _read_json(path / "config.json")
    info_path = path / "fit_info.json"
    info = _read_json(info_path) if info_path.exists() else {}
    config = config_from_meta(meta)
    state = torch.load(path / "weights.pt", weights_only=True, map_location="cpu")
    _check_finite(state, path / "weights.pt")
    # the weights overwrite every initial value (sigma_q included): n_bins is immaterial
    mask = state["input_mask"].bool()
    module = build_module(config, int(meta["n_units"]), 2, mask, torch.Generator().manual_seed(0))
    module.load_state_dict(state)
    return Fit(path, meta, module, info)
