"""``run_reference``: the session's community reference, chosen by the dataset, as a folder.

One call of the CLI (``disrnn reference``), the workflow (rule ``reference``) and Python:
the method follows the binned dataset (:func:`choose_reference`), so no config has to
guess the kind of data before binning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from disrnn._outputs import check_output
from disrnn.evaluation.inputs import load_data
from disrnn.evaluation.pca import pca_reference
from disrnn.evaluation.reference_inputs import heldout_units
from disrnn.evaluation.references import smoothing_reference, write_reference
from disrnn.fit.defaults import default_history
from disrnn.fit.tensors import bin_width, dataset_kind

__all__ = ["REFERENCE_METHODS", "choose_reference", "run_reference"]

#: the references ``run_reference`` computes; "auto": :func:`choose_reference`
REFERENCE_METHODS = ("smoothing", "pca")


def choose_reference(ds) -> str:
    """``"smoothing"`` for spike counts with held-out and held-in units (NLB co-smoothing),
    else ``"pca"`` (continuous data, or spikes without held-out units to co-smooth)."""
    ho = heldout_units(ds)
    if dataset_kind(ds) == "spike_counts" and ho.any() and not ho.all():
        return "smoothing"
    return "pca"


def run_reference(
    dataset,
    out_dir,
    method: str = "auto",
    n_components: int | None = None,
    seed: int = 0,
    condition=None,
    session: str | None = None,
    kernel_sds=None,
    causal_kernel_sds=None,
    alphas=None,
    n_folds: int | None = None,
    history: int | None = None,
    force: bool = False,
) -> Path:
    """Compute a reference of ``dataset`` and write it as an evaluation-style folder.

    Args:
        dataset: path or ``xr.Dataset`` (``disrnn bin``).
        out_dir: the folder (:func:`~disrnn.evaluation.references.write_reference`).
        method: ``"smoothing"`` (:func:`~disrnn.evaluation.references.smoothing_reference`),
            ``"pca"`` (:func:`~disrnn.evaluation.pca.pca_reference`) or ``"auto"``
            (:func:`choose_reference`). metrics.json ``method`` is the one computed.
        n_components: K of PCA (the workflow gives the session's DisRNN rank); unused by
            smoothing. seed: fold assignment (smoothing) / classifier seed (PCA).
        condition: trial coord name for PSTHs and condition decoding (default ``condition``).
        session: the id metrics.json records (default: dataset attrs, else the file stem).
        kernel_sds, causal_kernel_sds, alphas, n_folds: smoothing's cross-validation grid
            (None: the defaults of :func:`~disrnn.evaluation.references.smoothing_reference`;
            ``causal_kernel_sds`` empty: no causal smoothing).
        history: the fits' L: the bins such a fit cannot score (a trial's first L when no
            history bins precede its window) are not scored here either. None: the L of a
            fit with default options (:func:`disrnn.fit.defaults.default_history`); 0:
            every observed bin.
        force: replace ``out_dir`` even when it is not a previous evaluation-style folder
            (:func:`disrnn._outputs.check_output`; the dataset is never replaced).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        ValueError: an unknown ``method``; PCA without ``n_components``; what the chosen
        reference raises. FileExistsError: ``out_dir`` is not an evaluation-style folder.
    """
    check_output(out_dir, "evaluation", inputs=(dataset,), force=force)
    ds, ds_path = load_data(dataset)
    if method == "auto":
        method = choose_reference(ds)
    if method not in REFERENCE_METHODS:
        raise ValueError(
            f"method must be auto or one of {', '.join(REFERENCE_METHODS)}, got {method!r}"
        )
    if history is None:
        history = default_history(dataset_kind(ds), bin_width(ds))
    if isinstance(history, bool) or not isinstance(history, int | np.integer) or history < 0:
        raise ValueError(f"history must be a whole number of bins >= 0, got {history!r}")
    source = ds if ds_path is None else ds_path
    if method == "smoothing":
        grid = {
            "kernel_sds": kernel_sds,
            "causal_kernel_sds": causal_kernel_sds,
            "alphas": alphas,
            "n_folds": n_folds,
        }
        grid = {k: v for k, v in grid.items() if v is not None}  # None: the package's
        result = smoothing_reference(
            source, seed=seed, condition=condition, history=int(history), **grid
        )
    else:
        if n_components is None:
            raise ValueError(
                "the PCA reference needs n_components (K latents; the workflow uses the "
                "session's DisRNN rank, the sum of fit.groups); give --components K"
            )
        result = pca_reference(
            source, int(n_components), seed=seed, condition=condition, history=int(history)
        )
    if session is not None:
        result.metrics["session"] = str(session)
    return write_reference(result, out_dir)
