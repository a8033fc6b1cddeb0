"""What each metric of the reports means and which way is better, written once.

The session and summary reports show :func:`describe` as the hover title of every metric
row and header, and :func:`glossary` as the session report's glossary section. Keys are
the flattened metrics.json keys (``behavior_r2.hand_vel.all``, ``kstep_r2.4``); an entry
matches a family of keys by a regular expression (fullmatch), the first match wins.
"""

from __future__ import annotations

import re

__all__ = ["ENTRIES", "describe", "direction", "glossary"]

HIGHER, LOWER, NEITHER = "higher is better", "lower is better", "descriptive: no better side"

#: one entry a line: ``key pattern :: direction :: meaning``, direction ``+`` (higher is
#: better), ``-`` (lower is better) or ``=`` (descriptive); patterns are tried in order
_TABLE = r"""
co_bps :: + :: co-smoothing bits per spike: how much better the held-out units' spikes are predicted from the held-in units (one step ahead, causal) than by each unit's mean rate over the training trials, per spike (NLB's formula; for its null see co_bps_null_shift); the smoothing reference's row: its causal twin, held-in spikes smoothed over earlier bins only, one Poisson GLM per held-out unit
co_bps_causal :: + :: co-bps of the causal smoothing reference: held-in spikes smoothed over earlier bins only (a half Gaussian), one Poisson GLM per held-out unit; the like-for-like reference of a fit's one-step co_bps (reports show it in the co_bps row)
co_psth_r2_causal :: + :: co_psth_r2 of the causal smoothing reference
test_ll_heldout_per_bin_neuron_causal :: + :: held-out log-likelihood per bin and neuron of the causal smoothing reference (nats)
co_bps_null_shift :: = :: what every co-bps on the same bins loses when its null is each held-out unit's mean over the test bins themselves (NLB's own code) instead of over the training trials: subtract it to compare with NLB's published numbers; it depends on the data only
co_bps_smoothed :: + :: co-bps of the fit's smoothing posterior (latents from the held-in units of the whole trial, the fit's decoder with the held-out units' rows refitted on the training trials), the number NLB compares; the smoothing reference's row: NLB's smoothing baseline (a Gaussian kernel that also sees later bins, one Poisson GLM per held-out unit)
co_bps_smoothed_all_bins :: + :: co_bps_smoothed on every observed bin, history bins included
bps :: + :: bits per spike of the one-step prediction over all units, against each unit's mean rate
bps_heldin :: + :: bits per spike over the held-in units
test_ll_per_bin_neuron :: + :: test log-likelihood per bin and neuron (nats, log x! included)
test_ll_per_bin :: + :: test log-likelihood per bin, summed over neurons (nats)
test_ll_(heldin|heldout)_per_bin_neuron :: + :: test log-likelihood per bin and neuron of the held-in / held-out units (nats)
test_ll_heldout_smoothed_per_bin_neuron :: + :: held-out log-likelihood per bin and neuron of the smoothing posterior (nats; the smoothing reference's row: NLB's smoothing baseline)
recon_r2_same_bin(_heldin|_heldout)? :: + :: the PCA reference's R² of each bin reconstructed from the same bin's K principal components (held-out units: an affine map from them), pooled over units: an upper reference, not a one-step prediction
recon_r2_same_bin_unit_mean :: + :: mean over units of each unit's recon_r2_same_bin
recon_r2(_heldin|_heldout)? :: + :: R² of the one-step prediction against the observed activity, pooled over units (variance-weighted)
recon_r2_unit_mean :: + :: mean over units of each unit's R² of the one-step prediction
rate_r2_true :: + :: R² of the predicted rates against the true rates (simulations)
co_psth_r2 :: + :: NLB's PSTH R²: of the held-out units' condition-averaged predicted rates on the test trials against the PSTHs of their smoothed spikes over every trial (a fit: its causal one-step rates; the smoothing reference's row: its causal twin's); with a few test trials per condition their averages are noisy and every model's is low or negative: compare it with the reference row
co_psth_r2_smoothed :: + :: co_psth_r2 of the fit's smoothing posterior (whole trial; the smoothing reference's row: NLB's smoothing baseline)
pc :: - :: partial correlation between the latent groups of the test bins' aggregated posterior (nats; 0 = independent groups)
tc :: - :: total correlation between single latents (nats; 0 = independent latents)
sigma_q :: = :: sd of the posterior q(z|x) used for PC and TC (a post-hoc fit: its lrRNN's, carried through the latent map)
group_latent_r2(_cv|_own_groups|_best_partition)? :: + :: R² of the true latents from the matched inferred groups (each true group from one inferred group by an affine map; _cv: maps fitted on other test trials; _own_groups: the fit's own groups; _best_partition: single latents reassigned)
component_latent_r2(_single)? :: + :: mean R² per true latent dimension from its matched inferred group (_single: from one matched inferred latent)
latent_r2_global :: + :: R² of all true latents from all inferred latents by one affine map: the ceiling of any grouping
group_r2_matched\..+ :: + :: R² of this true group from the inferred group matched to it
J_offblock_frac :: - :: fraction of ||J||² outside the groups' diagonal blocks (0 = the groups do not drive each other)
J_spectral_radius :: = :: largest |eigenvalue| of J = BA, the latent-to-latent map of one bin before the nonlinearities
J_eig_max_real :: = :: largest real part of J's eigenvalues
(W|Wsub|Wg\d+)_pearson :: + :: Pearson r between the fitted and the true connectivity (W = AB; Wsub: the matched groups' W_g, mean; Wg<t>: true group t)
(W|Wsub|Wg\d+)_r2 :: + :: R² of the true connectivity by the fitted one
(W|Wsub|Wg\d+)_(mae|rmse) :: - :: mean absolute / root-mean-square error of the fitted against the true connectivity
behavior_r2\.[^.]+\.all :: + :: cross-validated ridge R² of this behavior variable from all latents
behavior_r2\.[^.]+\.running_sum :: + :: cross-validated ridge R² of this behavior variable from the running sum of all latents over the trial's bins up to each bin (latents that carry a velocity sum to a position, e.g. of the hand)
behavior_r2\.[^.]+\.g[^.]+ :: = :: cross-validated ridge R² of this behavior variable from one latent group's latents (descriptive: which group carries it)
behavior_r2_nlb\.[^.]+ :: + :: NLB's decoding R² of this behavior variable: ridge from the predicted rates of all units, fit on the train trials, scored on the test trials
behavior_r2_nlb_smoothed\.[^.]+ :: + :: NLB's decoding R² of this behavior variable from the smoothing posterior's rates of all units (whole trial); the smoothing reference's row: its own decoding (NLB's smoothed spikes)
condition_accuracy :: + :: fraction of test trials whose condition a logistic regression decodes from the latents
condition_accuracy_time_mean :: + :: mean over bins of the per-bin condition decoding accuracy
condition_chance :: = :: share of the most common condition among the test trials: the accuracy of always guessing it
kstep_r2\.\d+ :: + :: R² of the k-step-ahead prediction (the network run k bins on its own), k = the last number
kstep_bps\.\d+ :: + :: bits per spike of the k-step-ahead prediction
freerun_(rate|corr)_pearson :: + :: Pearson r between free-running rollouts and the test trials: of the mean rates / of the pairwise correlations between units
freerun_(rate|corr)_rmse :: - :: root-mean-square difference of free-running rollouts from the test trials: mean rates / pairwise correlations
freerun_rate_rel_err :: - :: relative error of the free-running mean rates
freerun_(mean_)?psth_r2 :: + :: R² of the condition-averaged PSTHs of free-running rollouts (sampled; _mean: mean feedback) against the test trials
reference_(rate_pearson|psth_r2|corr_pearson) :: = :: the same statistic of the training trials against the test trials: the ceiling a free-running model can reach
unit_mixed_fraction :: = :: fraction of units no group dominates (largest share of the unit's predicted variance below 2/3)
unit_dominant_share_mean :: = :: mean over units of the largest group's share of the unit's predicted variance (1 = every unit belongs to one group)
unit_group_counts(\..+)? :: = :: units dominated by this group (or mixed)
unit_area_ari :: = :: adjusted Rand index of the units' group assignment against their brain areas (1 = each group is one area, 0 = unrelated)
unit_assignment_ari_true :: + :: adjusted Rand index of the units' group assignment against the true one (simulations)
(fit|smoothing_posterior)_seconds :: - :: wall-clock seconds
(beta|alpha) :: = :: penalty weight of the fit (beta: PC/KL, alpha: block-diagonal)
(n_components|kernel_sd(_causal)?|psth_kernel_sd|glm_alpha(_causal)?|cv_folds|features) :: = :: a setting of the reference method (_causal: of the causal smoothing)
"""

_DIRECTIONS = {"+": HIGHER, "-": LOWER, "=": NEITHER}
#: (key pattern, meaning, direction), from ``_TABLE``
ENTRIES: tuple[tuple[str, str, str], ...] = tuple(
    (pattern, meaning, _DIRECTIONS[d])
    for pattern, d, meaning in (line.split(" :: ", 2) for line in _TABLE.strip().splitlines())
)

_COMPILED = [(re.compile(p), meaning, d) for p, meaning, d in ENTRIES]


def _entry(key: str) -> tuple[str, str] | None:
    for pattern, meaning, d in _COMPILED:
        if pattern.fullmatch(key):
            return meaning, d
    return None


def direction(key: str) -> str | None:
    """``"higher is better"``, ``"lower is better"``, the descriptive note, or None."""
    e = _entry(key)
    return None if e is None else e[1]


def describe(key: str) -> str:
    """``"<key>: <meaning> (<direction>)"``, or the key alone when no entry matches."""
    e = _entry(key)
    return key if e is None else f"{key}: {e[0]} ({e[1]})"


def glossary(keys) -> list[dict]:
    """[{key, meaning, direction}] for each of ``keys`` an entry matches, in order."""
    out = []
    for key in keys:
        e = _entry(key)
        if e is not None:
            out.append({"key": key, "meaning": e[0], "direction": e[1]})
    return out
