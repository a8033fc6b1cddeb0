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

__all__ = ["REFERENCE_KEYS", "REFERENCE_NAMES", "as_fit_keys", "reference_name"]

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

#: reference method -> {fit key (a trailing "." matches every key under it, "" every
#: key): what the reference's number shown under that key is}. The smoothing reference's
#: ``co_bps`` row holds its causal twin, not the NLB smoothing its metrics.json calls
#: ``co_bps``, so a sentence that quotes the key names which smoothing it compares with
REFERENCE_NAMES: dict[str, dict[str, str]] = {
    "smoothing": {
        "co_bps_smoothed": "NLB's smoothing (a kernel over past and later bins)",
        "test_ll_heldout_smoothed_per_bin_neuron": "NLB's smoothing",
        "co_psth_r2_smoothed": "NLB's smoothing",
        "behavior_r2_nlb_smoothed.": "NLB's smoothing",
        "co_bps": "the causal smoothing (past bins only)",
        "test_ll_heldout_per_bin_neuron": "the causal smoothing",
        "co_psth_r2": "the causal smoothing",
    },
    "pca": {"": "PCA (as many components as DisRNN has latents)"},
}


def reference_name(method: str, key: str) -> str:
    """What ``method``'s number under the fit key ``key`` is (:data:`REFERENCE_NAMES`),
    else the method's name."""
    for src, name in REFERENCE_NAMES.get(method, {}).items():
        if src in ("", key) or (src.endswith(".") and key.startswith(src)):
            return name
    return method


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
