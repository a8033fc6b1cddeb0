"""What every reference (smoothing, PCA) shares: its inputs and the identity in its metrics.

:func:`split_arrays`, :func:`heldout_units` and :func:`condition_labels` read the
dataset's train/test split, held-out units and condition labels with the checks every
reference needs; :func:`reference_identity` is the part of a reference's ``metrics.json``
that names the session, the data and the scored bins, with ``null`` for every metric of a
fit's evaluation a reference has no counterpart for.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from disrnn.data.io import file_sha256
from disrnn.evaluation.inputs import SESSION_ATTRS, dataset_identity, session_id
from disrnn.evaluation.steps import CONN_KEYS, TRUTH_KEYS
from disrnn.fit.tensors import check_split, dataset_kind

__all__ = [
    "NOT_APPLICABLE",
    "condition_labels",
    "heldout_units",
    "reference_identity",
    "split_arrays",
]

#: metrics of a fit's evaluation that a reference has no counterpart for (null)
NOT_APPLICABLE = (
    "fit_dir",
    "groups",
    "beta",
    "alpha",
    "epochs",
    "best_epoch",
    "bps",
    "bps_heldin",
    "test_ll_per_bin_neuron",
    "test_ll_per_bin",
    "test_ll_heldin_per_bin_neuron",
    "rate_r2_true",
    "group_partition",
    "partition_sizes",
    "sigma_q",
    "pc",
    "tc",
    *TRUTH_KEYS,
    *CONN_KEYS,
    *(f"{k}_{s}" for k in ("W", "Wsub") for s in ("mae", "rmse", "r2", "pearson")),
    "kstep_r2",
    "kstep_bps",
)


def split_arrays(ds: xr.Dataset):
    """(split (trial,) str, train (trial,) bool, test (trial,) bool); ValueError without both."""
    split = check_split(ds)
    train, test = split == "train", split == "test"
    if not train.any() or not test.any():
        raise ValueError(f"the dataset needs train and test trials (splits: {sorted(set(split))})")
    return split, train, test


def heldout_units(ds: xr.Dataset) -> np.ndarray:
    """(unit,) bool: the ``heldout`` coord, all False without one."""
    if "heldout" not in ds.coords:
        return np.zeros(ds.sizes["unit"], bool)
    return np.asarray(ds["heldout"].values).astype(bool)


def condition_labels(ds: xr.Dataset, condition):
    """(trial,) labels or None: a coord name, an array, or the ``condition`` coord."""
    if condition is None:
        return np.asarray(ds["condition"].values) if "condition" in ds.coords else None
    if isinstance(condition, str):
        if condition not in ds.coords:
            trial_coords = [c for c in ds.coords if ds[c].dims == ("trial",)]
            raise ValueError(f"no trial coordinate {condition!r}; trial coords: {trial_coords}")
        return np.asarray(ds[condition].values)
    labels = np.asarray(condition)
    if labels.shape != (ds.sizes["trial"],):
        raise ValueError(f"condition must have one label per trial ({ds.sizes['trial']})")
    return labels


def reference_identity(ds, ds_path, method, seed, history, test, ok_te, ho) -> dict:
    """The identity keys of a reference's metrics (``null`` for what it has no counterpart for).

    test: (trial,) bool test trials; ok_te: (test trial, time) bool scored bins; ho: (unit,)
    bool held-out units.
    """
    m = dict.fromkeys(NOT_APPLICABLE)
    m.update(
        {
            "method": method,
            "seed": int(seed),
            "eval_seed": int(seed),
            **dataset_identity(ds, ds_path),
            "dataset_sha256": None if ds_path is None else file_sha256(ds_path),
            "session": session_id(ds, ds_path),
            "kind": dataset_kind(ds),
            **{k: _plain(ds.attrs.get(k)) for k in SESSION_ATTRS},
            "n_test_trials": int(test.sum()),
            "n_test_bins": int(ok_te.sum()),
            "n_units": int(ds.sizes["unit"]),
            "n_heldout": int(ho.sum()),
            "history": int(history),
        }
    )
    return m


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v
