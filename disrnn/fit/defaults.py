"""The defaults a fit takes from its data, and the measurements behind each number.

:meth:`disrnn.fit.config.FitConfig.resolve` and ``resolve_steps`` fill in what a config
leaves as None from these: the PC weight beta and the initialisation by data kind, the
history length of spike-count fits, the encoder sd (a factor on the kernel-density rule
of thumb), the weight of the KL term and the number of epochs. Evaluation reads the same
rule of thumb. No torch.
"""

from __future__ import annotations

import math

__all__ = [
    "DEFAULT_BETA",
    "DEFAULT_PC_INIT",
    "FINETUNE_LR_SCALE",
    "FINETUNE_PATIENCE",
    "KL_REFERENCE_BIN_SECONDS",
    "SIGMA_SCALE",
    "SPIKE_HISTORY_SECONDS",
    "TARGET_STEPS",
    "default_history",
    "default_kl_weight",
    "rule_of_thumb_log_sigma",
]

#: optimizer steps of a fit when ``epochs`` is not given
TARGET_STEPS = 3000

#: beta used when a beta-method is given none, by data kind. Spike counts: 0.5, not the
#: paper's 2: with the spike-count sigma_q (a quarter of the rule of thumb) the PC term is
#: larger, and beta = 2 cost likelihood on real and simulated spikes alike (ALM x 3 seeds,
#: DisRNN 4+4: co-bps 0.249 -> 0.291, smoothing-posterior co-bps 0.490 -> 0.528 at 0.5, PC
#: between groups 0.33 -> 0.40 against lrRNN's 0.81; paper-poisson x 5 seeds: group latent
#: R^2 0.887 -> 0.893, test LL -0.627 -> -0.624). Continuous: 2, the paper's value for
#: its M1 data, not the 20 of its synthetic runs (beta = 20 shrank the latents toward the
#: PC estimator's bias: group latent R^2 0.55 against 0.66 at 5 on an earlier simulator).
#: Against 5, on paper-gaussian sessions not used to choose it (seeds 20-39, 10 each):
#: group latent R^2 0.955 / 0.952 against 0.954 / 0.947, W_g r 0.894 / 0.894 against
#: 0.887 / 0.886, test LL 0.287 / 0.288 against 0.275 / 0.271; on the real ALM session
#: at 50 ms, unit-max rescaled (3 seeds), the lick side decoded from the latents in
#: 0.739 of test trials against 0.693 (8 principal components: 0.725).
DEFAULT_BETA = {"continuous": 2.0, "spike_counts": 0.5}

#: init of a method with a PC penalty (beta > 0, several groups) when given none. On
#: paper-gaussian x 5 seeds the rotation init raised DisRNN's group latent R^2 from
#: 0.66 +- 0.17 to 0.84 +- 0.03 (3 random restarts picked by the validation objective:
#: 0.63 +- 0.19; a 512-bin PC batch: 0.65 +- 0.16 at 7x the time). See benchmarks/README.md.
DEFAULT_PC_INIT = "rotation"

#: factor on lr of the full-objective training after the rotation init, by data kind.
#: The beta = 0 pre-fit ends its cosine schedule at lr / 100; restarting at the full lr
#: throws the rotated fit out of that minimum. On ALM (DisRNN 4 + 4, seed 0) the full lr
#: kept the epoch-0 weights (early stopping) at co-bps 0.288 / smoothing posterior 0.528,
#: below the lrRNN it started from (0.309 / 0.537); lr / 10 gave 0.311 / 0.541, and PC
#: between groups 0.44 (seeds 0-1; 0.40 over seeds 0-2 at the full lr, lrRNN 0.81); on
#: paper-poisson-ls group latent R^2 0.875 / 0.886 (seeds 0, 1) against 0.893 +- 0.007 at
#: the full lr. Continuous data keep
#: the full lr: the synthetic benchmark's rotation init was measured with it.
FINETUNE_LR_SCALE = {"continuous": 1.0, "spike_counts": 0.1}

#: patience (epochs) of the full-objective training after the rotation init, by data
#: kind; None: the fit's own ``patience``. On spike counts that training starts at the
#: beta = 0 optimum and its validation objective rose from the first epoch on: ALM,
#: DisRNN seeds 0 and 1 at 3 + 3 and seed 0 at 4 + 4 all kept epoch 0 and stopped at
#: epoch 11 with the default patience of 10, 12 of a fit's 36 s. Three epochs keep
#: the same model at a quarter of that cost. Continuous data keep the fit's patience:
#: there the training after the rotation improves the fit for tens of epochs.
FINETUNE_PATIENCE = {"continuous": None, "spike_counts": 3}

#: seconds of history of a spike-count fit given no ``history`` (L = 10 bins of 20 ms).
#: One 20 ms bin through tanh is one or two spikes of evidence: on the real ALM session
#: (benchmarks/README.md, "Real spikes") an lrRNN of rank 8 predicted held-out neurons
#: with co-bps 0.16 at L = 1 and 0.31 at L = 10 (learned kernel), 0.32 at L = 25.
SPIKE_HISTORY_SECONDS = 0.2

#: factor on the rule-of-thumb encoder sd sigma_q = N_tot^(-1/(K+4)) by data kind. On
#: spike counts the rule's sigma (0.41 at 44,000 bins and K = 8) drowns the latents in
#: noise: the same lrRNN on ALM gave co-bps 0.23 at the rule, 0.29 at half of it and
#: 0.31 at a quarter. Continuous data keep the paper's rule (the synthetic benchmark).
SIGMA_SCALE = {"continuous": 1.0, "spike_counts": 0.25}


#: bin width (s) at which a spike-count fit's KL term has weight 1. Every bin of a fit
#: draws its own latent, so the KL per bin (the information its latents carry, in nats)
#: is paid once per bin: at 5 ms bins four times per 20 ms as at 20 ms. With weight 1 at
#: every width the same ALM lrRNN (4 + 4 sizes, seed 0) had latents of sd 0.13 at 5 ms
#: against 0.21 at 20 ms and 0.28 at 50 ms (sigma_q 0.09-0.11 at all three), and its PC
#: between the 4 + 4 halves, 0.70 at 20 ms, fell to 0.28 at 5 ms, where DisRNN's was the
#: same 0.28: under noise of about the latents' own size no partition looks dependent, and
#: the PC penalty had nothing to act on. With the weight bin width / 0.02 s (a KL cost per
#: second, not per bin) the latents had sd 0.20 at 5 ms and 0.22 at 50 ms, lrRNN's PC 0.72
#: and 0.66 against DisRNN's 0.59 and 0.31; causal co-bps at 5 ms lrRNN 0.321 (was 0.299),
#: DisRNN 0.319 (0.318), at 50 ms 0.324 (0.328) and 0.324 (0.323); the smoothing
#: posterior's at 5 ms 0.546 (0.545). 20 ms is the width every other spike-count default
#: was measured at, so those fits do not change. Continuous data keep the paper's weight 1.
KL_REFERENCE_BIN_SECONDS = 0.02


def _bin_seconds(bin_width: float) -> float:
    bw = float(bin_width)
    if not (math.isfinite(bw) and bw > 0):
        raise ValueError(f"bin_width must be a positive number of seconds, got {bin_width!r}")
    return bw


def default_kl_weight(kind: str, bin_width: float | None) -> float:
    """Weight of the KL term of a fit that is given none: bin width /
    ``KL_REFERENCE_BIN_SECONDS`` for spike counts (the KL paid per second of recording,
    not per bin), 1 for continuous data (the paper's) and when the bin width is unknown.

    Raises:
        ValueError: a bin width that is not a positive finite number.
    """
    if kind != "spike_counts" or bin_width is None:
        return 1.0
    return _bin_seconds(bin_width) / KL_REFERENCE_BIN_SECONDS


def default_history(kind: str, bin_width: float | None) -> int:
    """L of a fit that is given none: ``SPIKE_HISTORY_SECONDS`` in bins for spike counts,
    the paper's single bin for continuous data (and when the bin width is unknown).

    Raises:
        ValueError: a bin width that is not a positive finite number.
    """
    if kind != "spike_counts" or bin_width is None:
        return 1
    return max(1, round(SPIKE_HISTORY_SECONDS / _bin_seconds(bin_width)))


def rule_of_thumb_log_sigma(n_bins: int, rank: int) -> float:
    """log sigma_q = -log(N_tot) / (K + 4): the kernel-density rule of thumb for the
    encoder's sd, sigma_q = N_tot^(-1/(K+4)), N_tot = training bins (at least 2)."""
    return -math.log(max(int(n_bins), 2)) / (rank + 4)
