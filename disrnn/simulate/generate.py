"""Ground-truth sessions: independent latent groups driving a low-rank network.

The generative model (G groups, K = sum of group sizes latents, N units):

1. Each group g runs its own system (:mod:`disrnn.simulate.systems`) from its own
   random initial condition / noise, continuously over the whole session (trials are
   windows of ``trial_length`` bins separated by ``iti`` unrecorded bins). Each latent
   dimension is z-scored over the recorded bins: z_t in R^K. (The control system
   ``coupled_lorenz`` is one 6-D system whose two Lorenz halves are labelled as groups
   0 and 1; those two groups are dependent by construction.)
2. Observations through a low-rank readout A (N x K) and bias a:
   - spikes: x_t ~ Poisson(softplus(A z_t + a)) counts per bin;
   - continuous: x_t = A z_t + a + e_t, e_t ~ N(0, noise_sd^2 I).
3. The network that implements these latents is the low-rank RNN
   x_t ~ A (B h_t + b) + a with h_t = tanh(x_{t-1}), so the true connectivity is
   W = A B = sum_g A_g B_g with A_g = A[:, g], B_g = B[g, :]. ``network`` says where A,
   a, B, b come from:
   - ``"least-squares"``: A_ij ~ N(0, gain^2 / K); spikes: a_i solved so that unit i's
     mean rate over the session equals a target drawn log-uniformly from
     ``rate_range_hz``; continuous: a_i ~ N(0, bias_sd^2). The true B (K x N) is then
     *defined* as the affine least-squares encoder from h_t to z_t over every simulated
     bin that has a history (the first bin of each trial is excluded):

         (B, b) = argmin sum_{trial, t >= 1} || z_t - B tanh(x_{t-1}) - b ||^2.

   - ``"trained"`` (the paper's generator, :mod:`disrnn.simulate.paper`): A, a, B, b
     trained together, before any observation, so that z_t ~ B tanh(A z_{t-1} + a) + b
     over the consecutive recorded bins: the latents are a low-rank RNN's by construction.

   The intercept b (``encoder_bias``) is kept on the session but not written to NWB.
4. Behavior: a fixed random linear readout (H_1 x 2, unit-norm columns) of the first
   group's latents plus N(0, behavior_noise_sd^2) noise per bin, like a hand velocity.

All randomness comes from ``np.random.default_rng(seed)``, split with ``spawn`` into
independent streams for latents, readout, observation noise and behavior, so the latents
of a preset do not change when ``n_units`` is overridden.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from disrnn.simulate.areas import check_area_overlap
from disrnn.simulate.paper import TRAIN_STEPS, train_network
from disrnn.simulate.presets import RECIPES
from disrnn.simulate.readout import random_readout, softplus, true_encoder
from disrnn.simulate.systems import SYSTEMS, simulate_system, zscore

KINDS = ("spike_counts", "continuous")
NETWORKS = ("least-squares", "trained")


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _is_number(value) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


@dataclass(frozen=True)
class PresetConfig:
    """A simulated session's recipe; validated on construction.

    Attributes:
        name: preset name, written into the NWB session description.
        systems: one system name (a key of ``systems.SYSTEMS``) per latent group.
        kind: ``"spike_counts"`` (Poisson) or ``"continuous"`` (Gaussian).
        n_units: N, number of observed units (>= K).
        n_trials: number of recorded trials.
        trial_length: bins per trial (>= 2: the first bin is history only).
        iti: unrecorded bins between trials (and before the first); 0 = consecutive.
        bin_width: seconds per bin.
        dt: system time per bin, one per group (None: each system's default).
        substeps: RK4 steps per bin.
        burn_in: bins simulated and discarded before the session starts.
        initial: one initial state per system (None: drawn from the seed); with
            ``burn_in=0`` the first recorded state, e.g. the paper's ((1, 1, 1), (0.1, 1, 1)).
        network: ``"least-squares"`` or ``"trained"`` (the module docstring, step 3).
        train_steps: full-batch AdamW steps of the ``"trained"`` network.
        readout_gain: sd of A z_t per unit (A_ij ~ N(0, gain^2 / K)), least-squares only.
        rate_range_hz: (low, high) target mean rates of the units, spikes, least-squares only.
        bias_sd: sd of the bias a, continuous, least-squares only.
        noise_sd: sd of the observation noise, continuous only.
        behavior_noise_sd: sd of the noise added to the 2-D behavior.
        description: one line for humans.
        area_overlap: None (every unit reads every latent) or a fraction in [0, 1]: each
            group drives its own area of units (0 disjoint), labelled in the NWB
            electrodes table (:mod:`disrnn.simulate.areas`; spikes only).
    """

    name: str
    systems: tuple[str, ...]
    kind: str
    n_units: int
    n_trials: int
    trial_length: int
    iti: int = 0
    bin_width: float = 0.02
    dt: tuple[float, ...] | None = None
    substeps: int = 1
    burn_in: int = 500
    initial: tuple[tuple[float, ...], ...] | None = None
    network: str = "least-squares"
    train_steps: int = TRAIN_STEPS
    readout_gain: float = 1.0
    rate_range_hz: tuple[float, float] = (10.0, 40.0)
    bias_sd: float = 0.5
    noise_sd: float = 0.1
    behavior_noise_sd: float = 0.1
    description: str = ""
    area_overlap: float | None = None

    def __post_init__(self) -> None:
        # Normalise sequences given as lists (e.g. from YAML) to tuples.
        for name in ("systems", "dt", "rate_range_hz"):
            value = getattr(self, name)
            if isinstance(value, list | np.ndarray):
                object.__setattr__(self, name, tuple(value))
        if isinstance(self.initial, list | tuple | np.ndarray):
            starts = tuple(tuple(x0) if np.ndim(x0) == 1 else x0 for x0 in self.initial)
            object.__setattr__(self, "initial", starts)
        self._validate()

    def _validate(self) -> None:
        if not isinstance(self.systems, tuple) or not self.systems:
            raise ValueError(f"systems must be a non-empty tuple of names, got {self.systems!r}")
        for s in self.systems:
            if s not in SYSTEMS:
                raise ValueError(f"systems: unknown system {s!r}; known systems: {sorted(SYSTEMS)}")
        for name, valid in (("kind", KINDS), ("network", NETWORKS)):
            if getattr(self, name) not in valid:
                raise ValueError(f"{name} must be one of {valid}, got {getattr(self, name)!r}")
        for name, low in (
            ("n_units", 1),
            ("n_trials", 1),
            ("trial_length", 2),
            ("iti", 0),
            ("substeps", 1),
            ("burn_in", 0),
            ("train_steps", 1),
        ):
            value = getattr(self, name)
            if not _is_int(value) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.n_units < self.n_latents:
            raise ValueError(
                f"n_units must be at least the number of latents K={self.n_latents} "
                f"(systems {self.systems}) so that the readout A has full column rank, "
                f"got {self.n_units}"
            )
        n_bins = self.n_trials * (self.trial_length - 1)
        if n_bins <= self.n_units + 1:
            raise ValueError(
                f"n_trials * (trial_length - 1) = {n_bins} bins with history is too few to "
                f"define the encoder B over {self.n_units} units; use more trials or longer trials"
            )
        for name in ("bin_width", "readout_gain"):
            value = getattr(self, name)
            if not _is_number(value) or not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("bias_sd", "noise_sd", "behavior_noise_sd"):
            value = getattr(self, name)
            if not _is_number(value) or not np.isfinite(value) or value < 0:
                raise ValueError(
                    f"{name} must be a non-negative number, got {value!r}"
                    + (" (did you write 1-3 instead of 1e-3?)" if _is_number(value) else "")
                )
        rr = self.rate_range_hz
        if (
            not isinstance(rr, tuple)
            or len(rr) != 2
            or not all(_is_number(v) and np.isfinite(v) for v in rr)
            or not 0 < rr[0] <= rr[1]
        ):
            raise ValueError(f"rate_range_hz must be (low, high) with 0 < low <= high, got {rr!r}")
        if self.dt is not None:
            if not isinstance(self.dt, tuple) or len(self.dt) != len(self.systems):
                raise ValueError(
                    f"dt must give one time step per group ({len(self.systems)} for "
                    f"{self.systems}), got {self.dt!r}"
                )
            if not all(_is_number(v) and np.isfinite(v) and v > 0 for v in self.dt):
                raise ValueError(f"dt must hold positive numbers, got {self.dt!r}")
        dims = [SYSTEMS[s].dim for s in self.systems]
        if self.initial is not None and (
            not isinstance(self.initial, tuple)
            or [len(x0) if isinstance(x0, tuple) else None for x0 in self.initial] != dims
            or not all(_is_number(v) and np.isfinite(v) for x0 in self.initial for v in x0)
        ):
            raise ValueError(
                f"initial must give one state of {dims} finite numbers per system "
                f"{self.systems} (or None), got {self.initial!r}"
            )
        check_area_overlap(self.area_overlap, self.kind, self.n_units, self.group_sizes)
        if self.area_overlap is not None and self.network == "trained":
            raise ValueError(
                "area_overlap restricts a random readout; the trained network of "
                f"preset {self.name!r} learns its own (use network='least-squares')"
            )

    @property
    def group_sizes(self) -> tuple[int, ...]:
        return tuple(size for s in self.systems for size in SYSTEMS[s].group_sizes)

    @property
    def group_systems(self) -> tuple[str, ...]:
        """The system of each latent group (a system may label several groups)."""
        return tuple(s for s in self.systems for _ in SYSTEMS[s].group_sizes)

    @property
    def n_latents(self) -> int:
        return sum(self.group_sizes)

    def with_overrides(self, **overrides) -> PresetConfig:
        """A copy with some fields replaced (validated).

        Raises:
            ValueError: an unknown field name, or a bad value.
        """
        valid = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise ValueError(f"unknown override(s) {unknown}; valid overrides: {valid}")
        return dataclasses.replace(self, **overrides)


PRESETS: dict[str, PresetConfig] = {
    name: PresetConfig(name=name, **fields) for name, fields in RECIPES.items()
}


@dataclass
class SimulatedSession:
    """A simulated session and its ground truth (N units, K latents).

    Attributes:
        activity: (trial, time, unit) int32 spike counts per bin, or float64 continuous values.
        rates: (trial, time, unit) float64 expected counts per bin (spikes) or the
            noiseless mean A z + a (continuous).
        latents: (trial, time, latent) float64 z-scored latents z_t.
        latent_group: (latent,) int64 group index of each latent (0..G-1, contiguous).
        systems: (group,) system name per group.
        A: (unit, latent) float64 readout.
        B: (latent, unit) float64 true encoder (see the module docstring).
        bias: (unit,) float64 readout bias a.
        encoder_bias: (latent,) float64 intercept b of the encoder fit (not in NWB).
        encoder_r2: R^2 of z_t explained by B tanh(x_{t-1}) + b (pooled over latents): the
            best any linear one-step encoder can do against these latents.
        behavior: (trial, time, 2) float64 behavior variable.
        condition: (trial,) str condition label.
        trial_start: (trial,) float64 start time of each trial in seconds.
        bin_width: seconds per bin.
        kind: ``"spike_counts"`` or ``"continuous"``.
        preset: preset name.
        seed: the seed that produced it.
        config: the full recipe.
        unit_area: (unit,) str area of each unit (``area_overlap``), else None.
    """

    activity: np.ndarray
    rates: np.ndarray
    latents: np.ndarray
    latent_group: np.ndarray
    systems: list[str]
    A: np.ndarray
    B: np.ndarray
    bias: np.ndarray
    encoder_bias: np.ndarray
    encoder_r2: float
    behavior: np.ndarray
    condition: np.ndarray
    trial_start: np.ndarray
    bin_width: float
    kind: str
    preset: str
    seed: int
    config: PresetConfig = field(repr=False)
    unit_area: np.ndarray | None = None

    @property
    def W(self) -> np.ndarray:
        """(unit, unit) true connectivity A @ B."""
        return self.A @ self.B


def resolve_preset(preset: str | PresetConfig, **overrides) -> PresetConfig:
    """The PresetConfig for a name (or a config) with overrides applied.

    Raises:
        ValueError: unknown preset name (lists the presets), unknown override or bad value.
        TypeError: ``preset`` is neither a name nor a PresetConfig.
    """
    if isinstance(preset, PresetConfig):
        config = preset
    elif isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; available presets: {sorted(PRESETS)}")
        config = PRESETS[preset]
    else:
        raise TypeError(
            f"preset must be a preset name or a PresetConfig, got {type(preset).__name__}"
        )
    return config.with_overrides(**overrides) if overrides else config


def simulate(preset: str | PresetConfig, seed: int = 0, **overrides) -> SimulatedSession:
    """Simulate one session of a preset (see the module docstring for the model).

    Args:
        preset: a key of :data:`PRESETS` or a :class:`PresetConfig`.
        seed: seed of ``np.random.default_rng``; the same seed gives identical output.
        **overrides: PresetConfig fields to replace, e.g. ``n_trials=50, n_units=30``.

    Returns:
        A :class:`SimulatedSession`.

    Raises:
        ValueError: unknown preset (the message lists them), unknown override, bad value.
    """
    cfg = resolve_preset(preset, **overrides)
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(seed)
    rng_latent, rng_readout, rng_obs, rng_behavior = rng.spawn(4)

    n_trials, n_time, n_units = cfg.n_trials, cfg.trial_length, cfg.n_units
    period = cfg.iti + n_time
    first = np.arange(n_trials) * period + cfg.iti  # first bin of each trial, session index
    recorded = (first[:, None] + np.arange(n_time)[None, :]).ravel()  # (trial * time,)
    z, condition = _latents(cfg, rng_latent, first, recorded)  # 1.
    latent_group = np.repeat(np.arange(len(cfg.group_sizes)), cfg.group_sizes)
    net, A, bias, unit_area, rates, activity = _observe(
        cfg, z, latent_group, recorded, rng_readout, rng_obs
    )  # 2.
    behavior = _behavior(cfg, z[:, latent_group == 0], rng_behavior)  # 4.

    shape = (n_trials, n_time)
    activity = activity.reshape(*shape, n_units)
    latents = z.reshape(*shape, z.shape[1])
    # 3. the true encoder B (definition in the module docstring)
    if net is None:
        B, encoder_bias, encoder_r2 = true_encoder(activity, latents)
    else:
        B, encoder_bias, encoder_r2 = net.B, net.b, net.r2
    return SimulatedSession(
        activity=activity,
        rates=rates.reshape(*shape, n_units),
        latents=latents,
        latent_group=latent_group,
        systems=list(cfg.group_systems),
        A=A,
        B=B,
        bias=bias,
        encoder_bias=encoder_bias,
        encoder_r2=encoder_r2,
        behavior=behavior.reshape(*shape, 2),
        condition=condition,
        trial_start=first * cfg.bin_width,
        bin_width=float(cfg.bin_width),
        kind=cfg.kind,
        preset=cfg.name,
        seed=int(seed),
        config=cfg,
        unit_area=unit_area,
    )


def _latents(cfg: PresetConfig, rng: np.random.Generator, first, recorded):
    """Step 1: (z (trial * time, latent) float64 z-scored latents of the recorded bins,
    condition (trial,) str: the first group's label at each trial's first bin).

    Each group runs from its own stream of ``rng`` over the whole session.
    """
    period = cfg.iti + cfg.trial_length
    dts = cfg.dt or tuple(SYSTEMS[s].dt for s in cfg.systems)
    starts = cfg.initial or (None,) * len(cfg.systems)
    blocks, condition = [], None
    streams = rng.spawn(len(cfg.systems))
    for name, dt, rng_g, x0 in zip(cfg.systems, dts, streams, starts, strict=True):
        raw = simulate_system(name, cfg.n_trials * period, rng_g, dt, cfg.substeps, cfg.burn_in, x0)
        if condition is None:
            condition = np.array([SYSTEMS[name].label(raw[i]) for i in first])
        blocks.append(zscore(raw[recorded]))
    return np.concatenate(blocks, axis=1), condition


def _observe(cfg: PresetConfig, z, latent_group, recorded, rng_readout, rng_obs):
    """Step 2: the network's readout (and, trained, its encoder) and the observations.

    Returns:
        (net: the trained network or None, A (unit, latent), bias (unit,), unit_area
        (unit,) str or None, rates and activity (trial * time, unit)).
    """
    net, unit_area = None, None
    if cfg.network == "trained":
        pairs = np.flatnonzero(np.diff(recorded) == 1)  # z[i] -> z[i + 1], consecutive bins
        net = train_network(z, pairs, cfg.n_units, rng_readout, cfg.train_steps)
        A, bias = net.A, net.a
    else:  # each group drives its own area of units when area_overlap is set
        A, bias, unit_area = random_readout(cfg, z, rng_readout, latent_group)
    drive = z @ A.T + bias  # (trial * time, unit)
    if cfg.kind == "spike_counts":
        rates = softplus(drive)
        activity = rng_obs.poisson(rates).astype(np.int32)
    else:
        rates = drive
        activity = rates + rng_obs.normal(0.0, cfg.noise_sd, rates.shape)
    return net, A, bias, unit_area, rates, activity


def _behavior(cfg: PresetConfig, first_group, rng: np.random.Generator) -> np.ndarray:
    """Step 4: (trial * time, 2) a unit-norm random readout of the first group's latents
    ``first_group`` (trial * time, latent of group 0) plus noise."""
    readout = rng.standard_normal((first_group.shape[1], 2))
    readout /= np.linalg.norm(readout, axis=0, keepdims=True)
    return first_group @ readout + rng.normal(0.0, cfg.behavior_noise_sd, (first_group.shape[0], 2))
