"""Modular readouts: each latent group drives its own subset of units, named as an area.

With ``PresetConfig.area_overlap = f`` (None keeps the dense readout, every unit reading
every latent), the N units are cut in order into G contiguous blocks, one per latent
group, of sizes as equal as possible (``np.array_split``); block g is the area
``area{g}`` and its units read only group g's latents, except the last round(f * n_g)
units of the block, which also read the next group's (g + 1 mod G). So f = 0 gives
disjoint areas, 0 < f <= 1 partly overlapping ones; the area of a unit is always its
block's. The kept entries of A are scaled by sqrt(K / K_i), K_i the latents unit i reads,
so that each unit's drive A_i z_t keeps the dense readout's sd (``readout_gain``).

No randomness: the mask is fixed by the unit order, so the latents, A's draws and every
other stream of :func:`disrnn.simulate.generate.simulate` stay those of the dense preset.
The writer labels each unit's electrode with its area (``location``), which
``disrnn.bin_session`` reads into the unit coord ``area``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["AREA_PREFIX", "area_blocks", "check_area_overlap", "modular_readout"]

AREA_PREFIX = "area"


def area_blocks(n_units: int, n_groups: int) -> list[np.ndarray]:
    """Unit indices of each group's area: G contiguous blocks (``np.array_split``)."""
    return np.array_split(np.arange(n_units), n_groups)


def check_area_overlap(overlap, kind: str, n_units: int, group_sizes: tuple[int, ...]) -> None:
    """Raise ValueError unless ``overlap`` is None or a fraction in [0, 1] usable here.

    Args:
        overlap: ``PresetConfig.area_overlap``; kind: the data kind (areas label the
            electrodes of spiking units, so ``"spike_counts"`` only); n_units, group_sizes:
            each area must hold at least as many units as its group has latents.
    """
    if overlap is None:
        return
    if isinstance(overlap, bool) or not isinstance(overlap, int | float | np.integer | np.floating):
        raise ValueError(f"area_overlap must be a number in [0, 1] or None, got {overlap!r}")
    if not 0.0 <= float(overlap) <= 1.0:
        raise ValueError(
            f"area_overlap is the fraction of each area's units that also read the next "
            f"group, in [0, 1], got {overlap!r}"
        )
    if kind != "spike_counts":
        raise ValueError(
            f"area_overlap labels the units' electrodes, which only spiking sessions have; "
            f"kind is {kind!r} (use kind='spike_counts' or area_overlap=None)"
        )
    for g, (block, size) in enumerate(
        zip(area_blocks(n_units, len(group_sizes)), group_sizes, strict=True)
    ):
        if block.size < size:
            raise ValueError(
                f"area_overlap: area {AREA_PREFIX}{g} gets {block.size} of the {n_units} units "
                f"but its group has {size} latents; use n_units >= {size * len(group_sizes)}"
            )


def modular_readout(
    A: np.ndarray, latent_group: np.ndarray, overlap: float
) -> tuple[np.ndarray, np.ndarray]:
    """Restrict the readout to each unit's area (see the module docstring).

    Args:
        A: (unit, latent) float64 dense readout; latent_group: (latent,) int 0..G-1;
        overlap: fraction in [0, 1] of each area's units that also read the next group.

    Returns:
        (A_modular (unit, latent) float64, unit_area (unit,) str ``area{g}``).
    """
    labels = np.unique(latent_group)
    n_units, n_latents = A.shape
    reads = np.zeros((n_units, n_latents), bool)
    area = np.empty(n_units, dtype=object)
    for g, block in enumerate(area_blocks(n_units, labels.size)):
        area[block] = f"{AREA_PREFIX}{labels[g]}"
        reads[np.ix_(block, latent_group == labels[g])] = True
        n_shared = int(round(overlap * block.size))
        if n_shared and labels.size > 1:
            nxt = labels[(g + 1) % labels.size]
            reads[np.ix_(block[block.size - n_shared :], latent_group == nxt)] = True
    scale = np.sqrt(n_latents / reads.sum(1, keepdims=True))
    return np.where(reads, A * scale, 0.0), area.astype(str)
