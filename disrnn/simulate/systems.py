"""Latent dynamical systems of the simulator, as pure functions.

Every system is integrated with the classical fourth-order Runge-Kutta scheme
(:func:`rk4_step`) or, for the linear stochastic ones, sampled exactly in discrete time.
:func:`simulate_system` is the one entry point used by :mod:`disrnn.simulate.generate`:
it draws an initial condition from an injected ``np.random.Generator``, discards a
burn-in, and returns one trajectory sampled once per bin.

Systems (name -> dimension):

- ``lorenz`` (3): dx = sigma (y - x), dy = x (rho - z) - y, dz = x y - beta z with
  sigma = 10, rho = 28, beta = 8/3.
- ``thomas`` (3): Thomas' cyclically symmetric attractor, dx = sin(y) - b x,
  dy = sin(z) - b y, dz = sin(x) - b z with b = 0.208186.
- ``thomas_b0`` (3): the same field with b = 0 (no damping: the orbit wanders over the
  periodic lattice of the field, "labyrinth chaos"), the paper's second system.
- ``rotation`` (2): a damped 2-D linear oscillator driven by white process noise,
  dz = (-lambda z + omega J z) dt + s dW, sampled exactly; stationary variance 1.
- ``vanderpol`` (2): the Van der Pol limit cycle, dx = y, dy = mu (1 - x^2) y - x, mu = 1.5.
- ``coupled_lorenz`` (6): two Lorenz systems (rho 28 and 45) coupled diffusively through
  all three coordinates with strength c = 0.6: dX1 = f_28(X1) + c (X2 - X1),
  dX2 = f_45(X2) + c (X1 - X2). The coupling makes the halves strongly dependent
  (x1-x2 correlation 0.6-0.7 over a long run, measured on 12 seeds at dt 0.1) while the
  rho mismatch keeps them from synchronising (which would collapse the system to 3
  dimensions), so the 6 dimensions stay full-rank but do not split into independent
  groups. (Stronger coupling, c >= 0.7, can lock the pair onto one lobe.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

LORENZ_SIGMA = 10.0
LORENZ_RHO = 28.0
LORENZ_BETA = 8.0 / 3.0
THOMAS_B = 0.208186
VDP_MU = 1.5
COUPLED_RHO2 = 45.0
COUPLED_STRENGTH = 0.6

VectorField = Callable[[np.ndarray], np.ndarray]


# ----------------------------------------------------------------------- vector fields
def _unpack(state: np.ndarray) -> np.ndarray:
    """(..., d) -> (d, ...) view, so that ``x, y, z = _unpack(state)``."""
    state = np.asarray(state, dtype=float)
    return state if state.ndim == 1 else np.moveaxis(state, -1, 0)


def _pack(parts: list) -> np.ndarray:
    """d arrays of shape (...) -> (..., d); the inverse of :func:`_unpack`.

    (np.array + moveaxis is several times faster than np.stack on the single
    3-vectors that the RK4 loop evaluates tens of thousands of times.)
    """
    out = np.array(parts, dtype=float)
    return out if out.ndim == 1 else np.moveaxis(out, 0, -1)


def lorenz(
    state: np.ndarray,
    sigma: float = LORENZ_SIGMA,
    rho: float = LORENZ_RHO,
    beta: float = LORENZ_BETA,
) -> np.ndarray:
    """Lorenz vector field. state: (..., 3) -> (..., 3) time derivative."""
    x, y, z = _unpack(state)
    return _pack([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])


def thomas(state: np.ndarray, b: float = THOMAS_B) -> np.ndarray:
    """Thomas' cyclically symmetric vector field. state: (..., 3) -> (..., 3)."""
    x, y, z = _unpack(state)
    return _pack([np.sin(y) - b * x, np.sin(z) - b * y, np.sin(x) - b * z])


def van_der_pol(state: np.ndarray, mu: float = VDP_MU) -> np.ndarray:
    """Van der Pol vector field. state: (..., 2) -> (..., 2)."""
    x, y = _unpack(state)
    return _pack([y, mu * (1.0 - x**2) * y - x])


def coupled_lorenz(
    state: np.ndarray,
    coupling: float = COUPLED_STRENGTH,
    rho2: float = COUPLED_RHO2,
) -> np.ndarray:
    """Two diffusively coupled Lorenz systems. state: (..., 6) -> (..., 6).

    dX1 = f_rho(X1) + c (X2 - X1), dX2 = f_rho2(X2) + c (X1 - X2), X1 = state[..., :3].
    """
    x1, x2 = state[..., :3], state[..., 3:]
    d1 = lorenz(x1) + coupling * (x2 - x1)
    d2 = lorenz(x2, rho=rho2) + coupling * (x1 - x2)
    return np.concatenate([d1, d2], axis=-1)


# ------------------------------------------------------------------------- integrators
def rk4_step(f: VectorField, x: np.ndarray, h: float) -> np.ndarray:
    """One classical Runge-Kutta step of size h for dx/dt = f(x). x: (..., d)."""
    k1 = f(x)
    k2 = f(x + 0.5 * h * k1)
    k3 = f(x + 0.5 * h * k2)
    k4 = f(x + h * k3)
    return x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def integrate_rk4(
    f: VectorField, x0: np.ndarray, dt: float, n_steps: int, substeps: int = 1
) -> np.ndarray:
    """Integrate dx/dt = f(x) from x0, sampling every dt.

    Each sample interval dt is covered by ``substeps`` RK4 steps of size dt / substeps.

    Args:
        f: vector field, (..., d) -> (..., d).
        x0: (..., d) initial state (leading dims integrate independent copies at once).
        dt: time between returned samples (system time units), > 0.
        n_steps: number of samples after x0.

    Returns:
        (n_steps + 1, ..., d) float64 trajectory; row 0 is x0.
    """
    if dt <= 0 or n_steps < 0 or substeps < 1:
        raise ValueError(
            f"integrate_rk4 needs dt > 0, n_steps >= 0 and substeps >= 1; "
            f"got dt={dt}, n_steps={n_steps}, substeps={substeps}"
        )
    h = dt / substeps
    x = np.asarray(x0, dtype=float)
    out = np.empty((n_steps + 1, *x.shape))
    out[0] = x
    for i in range(n_steps):
        for _ in range(substeps):
            x = rk4_step(f, x, h)
        out[i + 1] = x
    return out


def noisy_rotation(
    n_steps: int,
    dt: float,
    rng: np.random.Generator,
    period: float = 1.0,
    damping: float = 0.5,
    z0: np.ndarray | None = None,
) -> np.ndarray:
    """Exact discrete-time samples of a damped, noise-driven 2-D linear oscillator.

    dz = (-lambda z + omega J z) dt + s dW with omega = 2 pi / period, lambda = damping,
    J the 90-degree rotation and s = sqrt(2 lambda), so the stationary covariance is I.
    Sampled every dt: z_{t+1} = exp(-lambda dt) R(omega dt) z_t + sqrt(1 - exp(-2 lambda dt)) e_t,
    e_t ~ N(0, I) from ``rng``; z_0 is ``z0`` or, when None, drawn from the stationary law.

    Returns:
        (n_steps + 1, 2) float64 trajectory.
    """
    if dt <= 0 or period <= 0 or damping <= 0:
        raise ValueError(
            f"noisy_rotation needs dt, period and damping > 0; "
            f"got dt={dt}, period={period}, damping={damping}"
        )
    angle = 2.0 * np.pi * dt / period
    decay = np.exp(-damping * dt)
    rot = decay * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    noise = np.sqrt(1.0 - decay**2) * rng.standard_normal((n_steps, 2))
    out = np.empty((n_steps + 1, 2))
    out[0] = rng.standard_normal(2) if z0 is None else z0
    for i in range(n_steps):
        out[i + 1] = rot @ out[i] + noise[i]
    return out


def zscore(traj: np.ndarray) -> np.ndarray:
    """(time, dim) -> (time, dim) with each dimension at mean 0 and sd 1.

    Raises:
        ValueError: a dimension is constant (cannot be standardised).
    """
    traj = np.asarray(traj, dtype=float)
    sd = traj.std(axis=0)
    if np.any(sd <= 1e-12):
        raise ValueError(f"cannot z-score a constant dimension (sd per dimension: {sd})")
    return (traj - traj.mean(axis=0)) / sd


# -------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class SystemSpec:
    """One latent system: its dimension, default time per bin and how to run it.

    ``run(n_steps, dt, substeps, rng, x0)`` returns (n_steps + 1, dim) raw states from
    the initial state ``x0`` (None: drawn from ``rng``);
    ``label(state)`` names the region a raw state is in (a trial's condition);
    ``blocks`` are the sizes of the latent groups the system's dimensions are labelled
    with (one group by default; ``coupled_lorenz`` labels its two halves as two groups,
    which are *not* independent).
    """

    dim: int
    dt: float
    run: Callable[[int, float, int, np.random.Generator, np.ndarray | None], np.ndarray]
    label: Callable[[np.ndarray], str]
    blocks: tuple[int, ...] | None = None

    @property
    def group_sizes(self) -> tuple[int, ...]:
        return self.blocks or (self.dim,)


def _ode_runner(f: VectorField, initial: Callable[[np.random.Generator], np.ndarray]):
    def run(n_steps: int, dt: float, substeps: int, rng: np.random.Generator, x0=None):
        return integrate_rk4(f, initial(rng) if x0 is None else x0, dt, n_steps, substeps)

    return run


def _lorenz_init(rng: np.random.Generator) -> np.ndarray:
    return np.array([0.0, 0.0, 25.0]) + rng.normal(0.0, 5.0, 3)


def _quadrant(state: np.ndarray) -> str:
    angle = np.arctan2(state[1], state[0]) % (2 * np.pi)
    return f"phase{int(angle // (np.pi / 2)) + 1}"


SYSTEMS: dict[str, SystemSpec] = {
    "lorenz": SystemSpec(
        dim=3,
        dt=0.02,
        run=_ode_runner(lorenz, _lorenz_init),
        label=lambda s: "left" if s[0] < 0 else "right",
    ),
    "thomas": SystemSpec(
        dim=3,
        dt=0.25,
        run=_ode_runner(thomas, lambda rng: rng.uniform(-2.0, 2.0, 3)),
        label=lambda s: "x_neg" if s[0] < 0 else "x_pos",
    ),
    "thomas_b0": SystemSpec(
        dim=3,
        dt=0.1,
        run=_ode_runner(partial(thomas, b=0.0), lambda rng: rng.uniform(-2.0, 2.0, 3)),
        label=lambda s: "x_neg" if s[0] < 0 else "x_pos",
    ),
    "rotation": SystemSpec(
        dim=2,
        dt=0.02,
        run=lambda n, dt, substeps, rng, x0=None: noisy_rotation(n, dt, rng, z0=x0),
        label=_quadrant,
    ),
    "vanderpol": SystemSpec(
        dim=2,
        dt=0.1,  # period ~76 bins, away from the rotation's 50 (no beating between them)
        run=_ode_runner(van_der_pol, lambda rng: rng.uniform(-2.0, 2.0, 2)),
        label=_quadrant,
    ),
    "coupled_lorenz": SystemSpec(
        dim=6,
        dt=0.02,
        run=_ode_runner(
            coupled_lorenz,
            lambda rng: np.tile([0.0, 0.0, 25.0], 2) + rng.normal(0.0, 5.0, 6),
        ),
        label=lambda s: "left" if s[0] < 0 else "right",
        blocks=(3, 3),
    ),
}


def simulate_system(
    name: str,
    n_bins: int,
    rng: np.random.Generator,
    dt: float | None = None,
    substeps: int = 1,
    burn_in: int = 500,
    x0: np.ndarray | None = None,
) -> np.ndarray:
    """Raw (not z-scored) trajectory of one system, sampled once per bin.

    Args:
        name: a key of :data:`SYSTEMS`.
        n_bins: number of samples returned.
        rng: source of the initial condition (and of the process noise, if any).
        dt: system time per bin (default: the system's own ``SYSTEMS[name].dt``).
        substeps: RK4 steps per bin.
        burn_in: bins simulated and discarded first, to start on the attractor.
        x0: (dim,) initial state (None: drawn from ``rng``); with ``burn_in=0`` the first
            returned state.

    Returns:
        (n_bins, dim) float64 states.

    Raises:
        ValueError: unknown system name, or an ``x0`` of the wrong length.
    """
    if name not in SYSTEMS:
        raise ValueError(f"unknown system {name!r}; known systems: {sorted(SYSTEMS)}")
    spec = SYSTEMS[name]
    if x0 is not None:
        x0 = np.asarray(x0, dtype=float)
        if x0.shape != (spec.dim,):
            raise ValueError(
                f"the initial state of {name!r} needs {spec.dim} numbers, got {x0.tolist()}"
            )
    traj = spec.run(burn_in + n_bins - 1, spec.dt if dt is None else dt, substeps, rng, x0)
    return traj[burn_in:]
