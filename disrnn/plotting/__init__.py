"""Figures from saved results only (datasets, evaluation folders, fit folders).

Every function takes arrays that the pipeline saved (an ``xarray.Dataset`` with dims
``(trial, time, unit)``, the DataArrays of an evaluation folder, a ``losses.csv`` frame)
and returns a :class:`matplotlib.figure.Figure`. Figures are built without pyplot, each on
its own Agg canvas: no global state and no change to the caller's matplotlib backend, so
they are safe in workers, Snakemake scripts and notebooks::

    from disrnn import plotting
    from disrnn.report.results import load_eval
    r = load_eval("results/sim_a/evals/DisRNN/seed0")
    plotting.plot_connectivity(r.connectivity).savefig("conn.png")

Nothing here fits or evaluates a model.
"""

from __future__ import annotations

from disrnn.plotting.comparison import (
    _method_order as _method_order,  # used by disrnn.report.html
)
from disrnn.plotting.comparison import (
    plot_metric_comparison,
    plot_paired_differences,
)
from disrnn.plotting.connectivity import plot_connectivity, plot_eigenvalues
from disrnn.plotting.data import plot_mean_rates, plot_psths, plot_rasters
from disrnn.plotting.fits import (
    plot_latents,
    plot_latents_vs_truth,
    plot_loss_curves,
    plot_predicted_vs_observed,
)
from disrnn.plotting.rollout import plot_rollout
from disrnn.plotting.selection import plot_selection_partitions, plot_selection_ranks
from disrnn.plotting.units import plot_area_groups, plot_unit_map

__all__ = [
    "plot_rasters",
    "plot_mean_rates",
    "plot_psths",
    "plot_loss_curves",
    "plot_latents",
    "plot_latents_vs_truth",
    "plot_predicted_vs_observed",
    "plot_connectivity",
    "plot_eigenvalues",
    "plot_rollout",
    "plot_unit_map",
    "plot_area_groups",
    "plot_metric_comparison",
    "plot_paired_differences",
    "plot_selection_ranks",
    "plot_selection_partitions",
]
