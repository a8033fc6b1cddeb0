"""The fit stage: one method, one seed, one dataset -> one fit folder.

    from disrnn.fit import FitConfig, fit, load_fit
    config = FitConfig.from_options("DisRNN", {"groups": [3, 3], "beta": 5.0})
    f = load_fit(fit("dataset.nc", config, "results/s/fits/DisRNN/seed0", seed=0))
    f.latents(ds); f.predict(ds); f.rollout(ds, 50)

File -> job:

    config.py     FitConfig (validated; ``from_options``, the one path of CLI, workflow
                  and Python) and the method registry METHODS / MethodSpec,
                  POSTHOC_METHODS, TRAINED_METHODS; no torch, so the workflow imports it
    defaults.py   the data-dependent defaults (beta, init, history, sigma_q's rule of
                  thumb, epochs) with the measurements behind them; no torch
    tensors.py    the dataset at the model boundary: load_input (check, fingerprint),
                  dataset_kind, valid_bins, activity_sha256, trial_arrays, FitData, prepare
    objective.py  the loss terms, written once (loss_terms, nll_terms), and the restart
                  selection objective built from them
    loop.py       one optimisation run of S seeds together (train_loops; train_loop is
                  S = 1): schedule, warm-up, each seed's early stopping and checkpoint
    checkpoint.py the checkpoint files (safe reads) and how each seed resumes
    stack.py      SeedStack: S networks as stacked parameters, the objective vmapped
    train.py      fit() / fit_seeds(): restarts, rotation initialisation, post-hoc
                  methods, the folders
    rotation.py   pc_rotation(s) / rotate_latents: the lowest-PC rotation of the latents
    posthoc.py    lrRNN+ICA and LINT: ica_transform, lint_transform, posthoc_fit
    folder.py     the fit folder: write_fit, read_losses, load_fit -> Fit, build_module

The networks (``nn.Module``s) are in ``disrnn.models.modules``; the pure loss functions
in ``disrnn.losses``. Names are imported lazily: ``import disrnn.fit.config`` does not
import torch. ``disrnn.fit`` itself may be called as the function ``fit``.
"""

from __future__ import annotations

import sys
import types

from disrnn._lazy import lazy_getattr

#: home module -> the names it exports here
_HOMES = {
    "disrnn.fit.config": (
        "FitConfig",
        "METHODS",
        "MethodSpec",
        "POSTHOC_METHODS",
        "TRAINED_METHODS",
    ),
    "disrnn.fit.tensors": ("FitData", "dataset_kind", "valid_bins"),
    "disrnn.fit.objective": ("TERMS",),
    "disrnn.fit.loop": ("DivergenceError",),
    "disrnn.fit.train": ("fit", "fit_seeds"),
    "disrnn.fit.folder": ("Fit", "load_fit"),
}
_EXPORTS = {name: home for home, names in _HOMES.items() for name in names}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS)


class _CallablePackage(types.ModuleType):
    """``disrnn.fit(...)`` is ``disrnn.fit.train.fit(...)``: importing the subpackage
    makes it the attribute ``fit`` of ``disrnn``, where the function is exported too."""

    def __call__(self, *args, **kwargs):
        from disrnn.fit.train import fit

        return fit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
