"""Settings of the smoothing posterior (:mod:`disrnn.evaluation.cosmoothing`), no torch:
:class:`SmoothingConfig` and the kernel span it takes from the bin width."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

__all__ = [
    "CONTEXT_BIN_SECONDS",
    "CONTEXT_UNITS",
    "DROPOUTS",
    "INIT_SHORT_WEIGHT",
    "INIT_TAU_SECONDS",
    "LAG_SECONDS",
    "LR",
    "READOUT",
    "SmoothingConfig",
    "context_stride",
    "default_lags",
]

#: seconds each side of a bin the smoothing posterior's kernel spans when given no
#: ``lags``. On the ALM session (20 ms bins, 16 of 66 units held out, lrRNN rank 8
#: trained 30 epochs) co-bps rose with the span: 0.537 at 0.2 s (10 bins), 0.543 at
#: 0.4 s, 0.547 at 0.6 s, 0.551 at 1 s (DisRNN 4 + 4: 0.552 at 0.6 s, 0.554 at 1 s);
#: its delay-period activity changes over seconds. 1 s costs about twice the time of
#: 0.2 s (27 s against 15 s per fit here).
LAG_SECONDS = 1.0

#: the kernel's initial shape (:func:`disrnn.models.smoothing.initial_kernel`): a share
#: ``INIT_SHORT_WEIGHT`` of a symmetric exponential of time constant ``INIT_TAU_SECONDS``,
#: the rest one of a third of the span. The posterior stops early after tens of epochs,
#: before its kernel moves far from where it started, so the start decides how fast the
#: latents may follow the spikes; for the same reason the coordinates it learns in
#: matter (``SmoothingConfig.basis``). ALM, 20 ms bins, lrRNN and DisRNN 4 + 4
#: (``python benchmarks/posterior_init.py``; measured with the kernel alone and with ALM's
#: twin unit still in: ``--posterior context=0 lr=0.01`` reruns the kernel alone), co-bps
#: of the wide single exponential /
#: this mixture / the mixture in the SVD coordinates of W (the default): cut to the
#: shape of a small NLB session (100 trials x 0.7 s, 60 training trials; seeds 0-2;
#: smoothing baseline 0.310) 0.249 / 0.378 / 0.409; the whole session (254 trials x 6 s;
#: seeds 0-1; smoothing 0.436) 0.549 / 0.547 / 0.553.
INIT_TAU_SECONDS = 0.03
INIT_SHORT_WEIGHT = 0.8
#: the held-out units' readout of the posterior. The fit trained its held-out rows of A, a
#: on its causal latents; trained with the encoder (from the fit's, in the encoder's SVD
#: coordinates, early-stopped on val: NLB's protocol, a readout of held-out neurons
#: fitted on the training trials) they raised co-bps (``python benchmarks/real.py
#: --sessions alm-small,alm,mtl --methods lrRNN,DisRNN --seeds 3``; lrRNN / DisRNN 4 + 4)
#: on ALM from 0.550 / 0.556 to 0.605 / 0.604 (smoothing baseline 0.436), on alm-small
#: from 0.412 / 0.406 to 0.435 / 0.433 (smoothing 0.310), and left MTL at 0.000 / -0.000
#: (smoothing 0.000)
READOUT = "refit"
#: coordinated-dropout fractions the posterior is fitted with, one fit each; the one with
#: the lowest held-out NLL on the val trials is kept. Which one is best depends on the
#: session. Test co-bps of p = 0 / 0.1 / 0.3 with the kernel alone (``python
#: benchmarks/posterior_init.py --sessions alm --seeds 1 --inits k0,k0.1,k0.3``, and
#: ``--sessions alm-small --seeds 3``; lrRNN and DisRNN 4 + 4): on ALM (20 ms bins, its
#: twin unit dropped, smoothing 0.433) 0.473 / 0.466 / 0.420; on the same file cut to a
#: small NLB session (60 training trials x 0.7 s, smoothing 0.228) 0.232 / 0.292 / 0.296:
#: with few training bins the held-out units alone train the encoder too little. On those
#: 8 fits the val NLL picked the best p or one within 0.01 of it. With the context GRU
#: (``CONTEXT_UNITS``) p = 0 came last by co-bps and by val NLL on ALM seed 0 (0.530
#: against 0.548 / 0.546) and alm-small seeds 0-2 (0.245 / 0.268 / 0.264 against at least
#: 0.275 / 0.299 / 0.289), and the val NLL chose it for 1 of the default run's 21
#: posteriors (rotation-limitcycle, every method x 3 seeds: one of DisRNN-MLP's, whose
#: MLP decoder keeps the fit's readout), so it is no longer tried: a third fewer
#: posteriors. With the kernel alone (``context=0``) pass ``dropout=(0.0, 0.1, 0.3)``.
DROPOUTS = (0.1, 0.3)
#: units per direction of the encoder's context path, a bidirectional GRU over the whole
#: trial added to the kernel's output (:class:`disrnn.models.smoothing.SmoothingEncoder`;
#: 0: the kernel alone), and the learning rate (``LR``) it trains with. The kernel sees a
#: fixed window of 2 s; the GRU the whole trial, hence where in the trial a bin lies and
#: which condition the trial belongs to. Test co-bps of DisRNN 4 + 4's posterior, ALM
#: seed 0 (smoothing 0.433), dropout p = 0 / 0.1 / 0.3 (``python
#: benchmarks/posterior_init.py --sessions alm --seeds 1 --methods DisRNN --inits
#: p0,p0.1,p0.3 --posterior context=H lr=LR``; first measured by a throwaway script
#: making the same call on ``benchmarks/real.py``'s fits): the kernel alone (context=0
#: lr=0.01) 0.475 at p = 0 (lrRNN and DisRNN: 0.473 / 0.466 / 0.420); 32 units (lr 1e-2)
#: 0.524 / 0.535 / 0.533; 64 units (lr 1e-2) 0.530 / 0.548 / 0.546; at p = 0.1, 128 units
#: 0.554 (lr 1e-2), 64 units 0.557 (lr 5e-3) and 0.560 (lr 2e-3, 1.5 x the time). On
#: alm-small (smoothing 0.228, seeds 0-2, the p the val loss picks) 32 units at lr 1e-2
#: 0.296, 64 units at lr 5e-3 0.291, the kernel alone 0.293. The GRU costs most of the
#: posterior's time: ALM, 64 units, lr 5e-3, 50-150 s per dropout p on one thread (the
#: kernel alone 15 s).
CONTEXT_UNITS = 64
#: the posterior's AdamW learning rate (see ``CONTEXT_UNITS``; the kernel alone had 1e-2)
LR = 5e-3
#: seconds per step of the context GRU: it steps over blocks of r = round(
#: CONTEXT_BIN_SECONDS / bin width) bins (:func:`context_stride`), so its sequential
#: steps, which dominate the posterior's time, do not multiply as the bins shrink, and
#: the context it carries is slow. On the ALM session at NLB's 5 ms bins (lrRNN rank 8,
#: seed 0; NLB's smoothing 0.426 on those bins; throwaway scripts calling
#: :func:`fit_smoothing_posterior`, one thread) a GRU stepping every bin took 1,732 s for
#: both dropout fractions and scored co-bps 0.517; stepping every 20 ms 542 s and 0.551,
#: at a lower val NLL (1.4877 against 1.4954): 1,240 steps a trial train worse, not only
#: slower. At 20 ms bins (DisRNN 4 + 4, ``benchmarks/real.py``'s fits; test co-bps, the
#: chosen dropout's val NLL; ``python benchmarks/posterior_init.py --sessions alm-small
#: --seeds 3 --methods DisRNN --inits svd --posterior context_bin=0.04`` reprints the
#: co-bps) every 20 / 40 / 60 / 80 ms: ALM seed 0 0.557 / 0.567 / n/a /
#: 0.566 in 188 / 93 / - / 56 s (val 3.9861 at 40 ms, 3.9847 at 80); alm-small seeds 0-2
#: 0.292 / 0.311 / 0.316 / 0.321 on average; their val NLLs at 20 / 40 / 60 / 80 ms
#: 3.6368 / 3.6229 / 3.6289 / 3.6313, 3.6234 / 3.6131 / 3.6131 / 3.6217 and 3.6315 /
#: 3.6256 / 3.6236 / 3.6266. 40 ms is below 20 ms on every seed; the val loss does not
#: separate 40-80 ms clearly, so 40 ms: the smallest change from the 20 ms at which the
#: GRU's width and learning rate were chosen, at half its time.
CONTEXT_BIN_SECONDS = 0.04


def default_lags(bin_width: float | None) -> int:
    """Lf = round(LAG_SECONDS / bin_width) bins (10 when the bin width is unknown)."""
    if bin_width is None or not (math.isfinite(float(bin_width)) and bin_width > 0):
        return 10
    return max(1, round(LAG_SECONDS / float(bin_width)))


def context_stride(context_bin: float, bin_width: float | None) -> int:
    """r = max(1, round(context_bin / bin_width)) bins per step of the context GRU (1 when
    the bin width is unknown)."""
    if bin_width is None or not (math.isfinite(float(bin_width)) and bin_width > 0):
        return 1
    return max(1, round(float(context_bin) / float(bin_width)))


@dataclasses.dataclass(frozen=True)
class SmoothingConfig:
    """Settings of :func:`fit_smoothing_posterior` (validated on construction).

    lags: Lf, the kernel spans bins t-Lf .. t+Lf (None: ``LAG_SECONDS`` in bins of the
    dataset, :func:`default_lags`); epochs, patience: at most ``epochs``
    passes over the train trials, stop after ``patience`` without a better val loss;
    lr, weight_decay: AdamW; batch_trials: trials per step; dropout: coordinated-dropout
    fraction p of held-in units hidden per trial (0: loss on held-out units only), or a
    tuple of them: one posterior each, the lowest val held-out NLL kept (``DROPOUTS``);
    kernel: ``shared`` (one phi) or ``per-latent`` (one phi per latent); init: ``fit``
    (B_s, b_s from the fit's linear encoder) or ``random``; basis: the coordinates the
    encoder (and a per-latent kernel) works in, ``svd`` (those of the SVD of the fit's
    W = A B over the held-in units, :func:`disrnn.models.smoothing.svd_basis`, for a
    linear encoder and decoder; else the fit's own) or ``fit`` (the fit's latents);
    tau_short (s, > 0) and short_weight (in [0, 1]): the kernel's initial shape
    (``INIT_TAU_SECONDS``, ``INIT_SHORT_WEIGHT``); readout: ``refit`` (the held-out units'
    rows of a linear decoder are trained with the encoder, from the fit's, without weight
    decay: :class:`disrnn.models.smoothing.HeldoutReadout`) or ``fixed`` (the fit's A, a
    for every unit). ``READOUT`` says why ``refit`` is the default. context: H, units
    per direction of the encoder's bidirectional GRU over the whole trial (0: the kernel
    alone; ``CONTEXT_UNITS``); context_bin: seconds per step of that GRU, which steps
    over blocks of :func:`context_stride` bins (``CONTEXT_BIN_SECONDS``).
    """

    lags: int | None = None
    epochs: int = 300
    patience: int = 15
    lr: float = LR
    weight_decay: float = 1e-2
    batch_trials: int = 16
    dropout: float | tuple[float, ...] = DROPOUTS
    kernel: str = "per-latent"
    init: str = "fit"
    basis: str = "svd"
    tau_short: float = INIT_TAU_SECONDS
    short_weight: float = INIT_SHORT_WEIGHT
    readout: str = READOUT
    context: int = CONTEXT_UNITS
    context_bin: float = CONTEXT_BIN_SECONDS

    def __post_init__(self):
        for name in ("lags", "epochs", "patience", "batch_trials", "context"):
            v = getattr(self, name)
            if name == "lags" and v is None:
                continue
            low = 0 if name in ("lags", "context") else 1
            if not isinstance(v, int | np.integer) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
        if not (isinstance(self.context_bin, int | float) and math.isfinite(self.context_bin)
                and self.context_bin > 0):  # fmt: skip
            raise ValueError(
                f"context_bin must be a positive number of seconds, got {self.context_bin!r}"
            )
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be non-negative, got {self.weight_decay!r}")
        ps = self.dropout if isinstance(self.dropout, tuple | list) else (self.dropout,)
        if not ps or not all(isinstance(p, int | float) and 0 <= p < 1 for p in ps):
            raise ValueError(
                f"dropout must be a fraction in [0, 1) or a non-empty list of them, got "
                f"{self.dropout!r}"
            )
        if isinstance(self.dropout, list):
            object.__setattr__(self, "dropout", tuple(self.dropout))
        if self.kernel not in ("shared", "per-latent"):
            raise ValueError(f"kernel must be 'shared' or 'per-latent', got {self.kernel!r}")
        if not (isinstance(self.tau_short, int | float) and math.isfinite(self.tau_short)
                and self.tau_short > 0):  # fmt: skip
            raise ValueError(
                f"tau_short must be a positive number of seconds, got {self.tau_short!r}"
            )
        if not 0 <= self.short_weight <= 1:
            raise ValueError(f"short_weight must be in [0, 1], got {self.short_weight!r}")
        if self.basis not in ("svd", "fit"):
            raise ValueError(f"basis must be 'svd' or 'fit', got {self.basis!r}")
        if self.readout not in ("refit", "fixed"):
            raise ValueError(f"readout must be 'refit' or 'fixed', got {self.readout!r}")
        if self.init not in ("fit", "random"):
            raise ValueError(f"init must be 'fit' or 'random', got {self.init!r}")
