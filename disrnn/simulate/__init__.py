"""Ground-truth sessions: latent systems, the generative model and the NWB writer.

    from disrnn.simulate import simulate, simulate_nwb, PRESETS
    session = simulate("lorenz-thomas", seed=0)            # arrays in memory
    path = simulate_nwb("paper-gaussian", "sim.nwb", seed=3) # an ordinary NWB file

The NWB layout is the contract in ``docs/design.md`` ("The simulated NWB layout").
"""

from __future__ import annotations

import os
from pathlib import Path

from disrnn.simulate.generate import PRESETS, PresetConfig, SimulatedSession, simulate
from disrnn.simulate.nwb_writer import read_truth, write_nwb

__all__ = [
    "PRESETS",
    "PresetConfig",
    "SimulatedSession",
    "read_truth",
    "simulate",
    "simulate_nwb",
    "write_nwb",
]


def simulate_nwb(preset: str, out: str | os.PathLike, seed: int = 0, **overrides) -> Path:
    """Simulate a preset and write it as NWB to ``out``; returns the path.

    Args:
        preset: a key of :data:`PRESETS` (or a :class:`PresetConfig`).
        out: output ``.nwb`` path (written atomically).
        seed: random seed; the same seed writes the same session.
        **overrides: PresetConfig fields, e.g. ``n_trials=50, n_units=30``.

    Raises:
        ValueError: unknown preset (the message lists them) or a bad override.
        PermissionError / OSError: ``out`` cannot be written.
    """
    return write_nwb(simulate(preset, seed=seed, **overrides), out)
