"""A reference's numbers in the fits' vocabulary, so reports compare like with like.

The smoothing reference (:func:`disrnn.evaluation.references.smoothing_reference`)
writes NLB's names: ``co_bps`` is NLB's smoothing baseline, whose kernel sees the bins
after t, and ``co_bps_causal`` its twin of past bins only. A fit's ``co_bps`` is its
causal one-step prediction and ``co_bps_smoothed`` its whole-trial posterior. Placed by
raw key, a table row would set the acausal baseline beside the causal fits, and a paired
difference would subtract one from the other. Reports therefore read a reference's
metrics through :data:`REFERENCE_KEYS`: the acausal smoothing in the rows of the fits'
whole-trial posterior, the causal smoothing in the rows of their one-step prediction.
PCA's reconstruction is of the same bin (an upper reference, not a one-step prediction),
so it gets rows of its own. metrics.json keeps the names it was written with.
"""

from __future__ import annotations

__all__ = ["REFERENCE_KEYS", "as_fit_keys"]

#: reference method -> {its metrics.json key (a trailing "." matches every key under it):
#: the fit key its number is shown and compared as}
REFERENCE_KEYS: dict[str, dict[str, str]] = {
    "smoothing": {
        "co_bps": "co_bps_smoothed",
        "test_ll_heldout_per_bin_neuron": "test_ll_heldout_smoothed_per_bin_neuron",
        "co_psth_r2": "co_psth_r2_smoothed",
        "behavior_r2_nlb.": "behavior_r2_nlb_smoothed.",
        "co_bps_causal": "co_bps",
        "test_ll_heldout_per_bin_neuron_causal": "test_ll_heldout_per_bin_neuron",
        "co_psth_r2_causal": "co_psth_r2",
    },
    "pca": {
        "recon_r2": "recon_r2_same_bin",
        "recon_r2_unit_mean": "recon_r2_same_bin_unit_mean",
        "recon_r2_heldin": "recon_r2_same_bin_heldin",
        "recon_r2_heldout": "recon_r2_same_bin_heldout",
    },
}


def as_fit_keys(method: str, values: dict) -> dict:
    """``values`` (flattened metrics) of an evaluation of ``method`` with a reference's keys
    renamed by :data:`REFERENCE_KEYS`; any other method's values as given."""
    table = REFERENCE_KEYS.get(method)
    if not table:
        return values
    kept, renamed = {}, {}
    for key, value in values.items():
        for src, dst in table.items():
            if key == src or (src.endswith(".") and key.startswith(src)):
                renamed[dst + key[len(src) :]] = value
                break
        else:
            kept[key] = value
    return {**kept, **renamed}
