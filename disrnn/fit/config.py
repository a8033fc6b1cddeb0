"""FitConfig and the method registry: what a fit is, validated, without importing torch.

``FitConfig.from_options("DisRNN", {"groups": [3, 3], "beta": 20.0})`` is the one way a
fit's options become a config: the command line (``disrnn fit``), the workflow
(``workflow/scripts/fit.py``) and Python all call it. It drops options given as None
(= the default), gives a one-group method (``lrRNN``) the sum of ``groups`` as its rank,
and calls :meth:`FitConfig.create`, which applies the method's defaults (from
:data:`METHODS`), then the options, and validates every value; a bad value raises
``ValueError`` naming the value and the fix.

Some values may stay unresolved until the data is known (:meth:`FitConfig.resolve`):
``likelihood="auto"`` (Poisson for ``kind="spike_counts"``, Gaussian for ``continuous``),
``beta=None`` for the methods with a partial-correlation penalty (``DEFAULT_BETA``:
5 on continuous data, 0.5 on spike counts), and the history ``history=None`` /
``kernel=None`` / ``sigma_scale=None`` (spike counts: about ``SPIKE_HISTORY_SECONDS``
of history with a learned kernel and a quarter of the rule-of-thumb encoder sd;
continuous data: the paper's one bin, see ``SIGMA_SCALE``). These numbers, and the
measurements behind them, are in :mod:`disrnn.fit.defaults`.

Every method is the same network and training loop with different settings:

    lrRNN        one group, beta = alpha = 0
    lrRNN+ICA    FastICA on an lrRNN's training latents: A' = A mixing, B' = unmixing B
    LINT         SVD of an lrRNN's W = U S V^T: A' = U_K S_K, B' = V_K^T, z = B' h
    bdRNN        G groups, alpha = 1 (off-block penalty on J = B A), beta = 0
    DisRNN-full  K groups of one latent (total correlation), beta
    DisRNN       G groups, beta (partial correlation)
    DisRNN-MLP   DisRNN with one-hidden-layer MLP encoder and decoder

The workflow imports this module (``workflow/rules/common.smk``) to check method names
and option values before any job; keep it free of torch and other heavy imports.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from disrnn.fit.defaults import (
    DEFAULT_BETA,
    DEFAULT_PC_INIT,
    FINETUNE_LR_SCALE,
    FINETUNE_PATIENCE,
    SIGMA_SCALE,
    TARGET_STEPS,
    default_history,
    default_kl_weight,
)


# ------------------------------------------------------------------------ the methods
@dataclass(frozen=True)
class MethodSpec:
    """A method: its defaults (overridable), fixed values (not) and whether it has one group."""

    description: str
    defaults: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    one_group: bool = False


_LR = {"beta": 0.0, "alpha": 0.0, "encoder": "linear", "decoder": "linear"}

#: every method, in the order tables and figures list them
METHODS: dict[str, MethodSpec] = {
    "lrRNN": MethodSpec(
        "low-rank RNN, one latent group, no disentangling penalty",
        defaults={"groups": (6,)},
        fixed={**_LR, "posthoc": None},
        one_group=True,
    ),
    "lrRNN+ICA": MethodSpec(
        "FastICA rotation of an lrRNN's latents (components grouped in ICA order)",
        defaults={"groups": (3, 3)},
        fixed={**_LR, "posthoc": "ica"},
    ),
    "LINT": MethodSpec(
        "SVD of an lrRNN's W (components grouped by singular value)",
        defaults={"groups": (3, 3)},
        fixed={**_LR, "posthoc": "lint"},
    ),
    "bdRNN": MethodSpec(
        "block-diagonal penalty alpha on the latent connectivity J = B A",
        defaults={"groups": (3, 3), "alpha": 1.0},
        fixed={"beta": 0.0, "posthoc": None, "encoder": "linear", "decoder": "linear"},
    ),
    "DisRNN-full": MethodSpec(
        "total-correlation penalty: every latent its own group",
        defaults={"groups": (6,), "beta": None},
        fixed={"alpha": 0.0, "posthoc": None, "encoder": "linear", "decoder": "linear"},
    ),
    "DisRNN": MethodSpec(
        "partial-correlation penalty beta between latent groups",
        defaults={"groups": (3, 3), "beta": None},
        fixed={"posthoc": None, "encoder": "linear", "decoder": "linear"},
    ),
    "DisRNN-MLP": MethodSpec(
        "DisRNN with one-hidden-layer MLP encoder and decoder",
        defaults={"groups": (3, 3), "beta": None},
        fixed={"posthoc": None, "encoder": "mlp", "decoder": "mlp"},
    ),
}

#: the methods that transform the lrRNN fit of the same seed instead of training
POSTHOC_METHODS = tuple(m for m, spec in METHODS.items() if spec.fixed.get("posthoc"))
#: the methods that train a network
TRAINED_METHODS = tuple(m for m in METHODS if m not in POSTHOC_METHODS)
#: values of ``FitConfig.posthoc``: None (train) or a post-hoc method's transform
POSTHOC_KINDS = (None, *dict.fromkeys(METHODS[m].fixed["posthoc"] for m in POSTHOC_METHODS))

LIKELIHOODS = ("auto", "gaussian", "poisson")
LINKS = ("softplus", "exp")
KERNELS = ("fixed", "learned")
SIGMAS = ("fixed", "learned")
NETS = ("linear", "mlp")
SCHEDULES = ("constant", "cosine")
INITS = ("random", "rotation")


def _nonneg(name: str, value: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
    if value < 0:
        raise ValueError(
            f"{name} must be non-negative, got {float(value)!r} "
            f"(did you write 1-3 instead of 1e-3?)"
        )
    return float(value)


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _choice(name: str, value: Any, valid: tuple) -> Any:
    if value not in valid:
        shown = ", ".join(repr(v) for v in valid)
        raise ValueError(f"unknown {name} {value!r}; valid values: {shown}")
    return value


@dataclass(frozen=True)
class FitConfig:
    """Everything that defines one fit except the data, the seed and the device.

    Attributes:
        method: a key of ``METHODS`` (``lrRNN``, ``lrRNN+ICA``, ``LINT``, ``bdRNN``,
            ``DisRNN-full``, ``DisRNN``, ``DisRNN-MLP``).
        groups: latent group sizes H_1..H_G; rank K = sum(groups). One-group methods
            take one size; ``DisRNN-full`` uses K groups of size 1.
        beta: partial-correlation weight (None: by data kind, see ``DEFAULT_BETA``).
        alpha: weight of the off-block-diagonal penalty on J = B A (bdRNN).
        likelihood: ``auto`` | ``gaussian`` | ``poisson``.
        link: Poisson rate link f(eta): ``softplus`` | ``exp``.
        history: L, bins of history (None: by data kind, :meth:`resolve`); the history
            bins a dataset holds before each window (``pre_activity``) feed the first
            window bins, so only the first L - p bins are history only (p held bins).
        kernel: ``fixed`` (psi_l ~ exp(-(l-1)), sum 1) or ``learned`` (softmax weights);
            None: ``learned`` for spike counts with L > 1, else ``fixed``.
        sigma: encoder sd, ``fixed`` = sigma_scale * N_tot^(-1/(K+4)) or ``learned``
            (initialised there).
        sigma_scale: factor on the rule-of-thumb sigma_q (None: ``SIGMA_SCALE`` by kind).
        kl_weight: weight of the KL term (None: by kind and bin width, ``default_kl_weight``).
        encoder, decoder: ``linear`` or ``mlp`` (one hidden layer of ``hidden`` tanh units).
        posthoc: None, ``ica`` or ``lint``: transform of a fitted lrRNN (no training).
        epochs, batch_size, lr, weight_decay, patience, schedule: AdamW training;
            ``schedule="cosine"`` anneals lr to lr/100 over ``epochs``. ``epochs=None``:
            about ``TARGET_STEPS`` optimizer steps, clipped to 30..300 epochs;
            ``patience=None``: max(10, epochs // 5) (see :meth:`resolve_steps`).
        warmup: fraction of the epochs over which beta and alpha ramp up linearly from 0
            (early stopping and the best-model choice start after it).
        checkpoint_every: epochs between checkpoints a killed run resumes from.
        restarts: initialisations fitted (each from its own seed-derived generator); the
            one with the lowest validation objective NLL + KL + beta PC (PC of the exact
            aggregated posterior of the validation bins) is kept.
        init: ``random``, or ``rotation`` (PC methods): train the beta = 0 objective
            first (an lrRNN, same schedule), rotate its latents to the orthogonal R with
            the lowest PC (NLL and KL are rotation invariant; ``disrnn.fit.rotation``), then
            train the full objective from there. ``None``: ``DEFAULT_PC_INIT`` for
            methods with a PC penalty (beta > 0, several groups), else ``random``.
        finetune_lr_scale: factor on ``lr`` of the full-objective training that follows
            the rotation init (its schedule starts again from lr x this factor); None:
            ``FINETUNE_LR_SCALE`` by kind.
        finetune_patience: ``patience`` of that training; None: ``FINETUNE_PATIENCE`` by
            kind (None there: the fit's ``patience``).
        pc_batch: bins of the separate batch the PC term is estimated on each step
            (drawn anew each step; ``None``: the likelihood batch itself).
    """

    method: str = "DisRNN"
    groups: tuple[int, ...] = (3, 3)
    beta: float | None = None
    alpha: float = 0.0
    likelihood: str = "auto"
    link: str = "softplus"
    history: int | None = None
    kernel: str | None = None
    sigma: str = "fixed"
    sigma_scale: float | None = None
    kl_weight: float | None = None
    encoder: str = "linear"
    decoder: str = "linear"
    hidden: int = 64
    posthoc: str | None = None
    epochs: int | None = None
    batch_size: int = 128
    lr: float = 1e-2
    weight_decay: float = 0.01
    patience: int | None = None
    schedule: str = "cosine"
    warmup: float = 0.0
    checkpoint_every: int = 10
    restarts: int = 1
    init: str | None = None
    pc_batch: int | None = None
    finetune_lr_scale: float | None = None
    finetune_patience: int | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(cls, method: str = "DisRNN", **overrides: Any) -> FitConfig:
        """The config of ``method`` with its defaults, then ``overrides``, validated.

        ``rank=K`` may be given instead of (or together with) ``groups``: alone it means
        one group of K (one-group methods) or two equal groups; with ``groups`` the sizes
        must sum to K.

        Raises:
            ValueError: unknown method or key, or any invalid value (see ``__post_init__``).
        """
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
        spec = METHODS[method]
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(overrides) - names - {"rank"}
        if unknown:
            raise ValueError(
                f"unknown FitConfig option(s) {sorted(unknown)}; valid options: {sorted(names)}"
            )
        rank = overrides.pop("rank", None)
        for key in spec.fixed:
            if key in overrides and overrides[key] != spec.fixed[key]:
                raise ValueError(
                    f"method {method} fixes {key}={spec.fixed[key]!r}, got {key}="
                    f"{overrides[key]!r}; choose a method that has that option "
                    f"(e.g. DisRNN for beta, bdRNN for alpha)"
                )
        values = {**spec.defaults, **spec.fixed, **overrides, "method": method}
        if "groups" in values and values["groups"] is not None:
            values["groups"] = _as_groups(values["groups"])
        if rank is not None:
            rank = _positive_int("rank", rank)
            if "groups" in overrides:
                if sum(values["groups"]) != rank:
                    raise ValueError(
                        f"group sizes {values['groups']} sum to {sum(values['groups'])}, "
                        f"not to the rank {rank}; give sizes that sum to K"
                    )
            elif spec.one_group:
                values["groups"] = (rank,)
            else:
                values["groups"] = (rank // 2, rank - rank // 2) if rank > 1 else (1,)
        if method == "DisRNN-full":
            values["groups"] = (1,) * sum(values["groups"])
        return cls(**values)

    @classmethod
    def from_options(cls, method: str, options: Mapping[str, Any] | None = None) -> FitConfig:
        """The config of ``method`` from an options mapping: the one path of CLI, workflow
        and Python.

        ``options`` holds FitConfig fields (and ``rank``) as a YAML section or parsed
        command line gives them: None means "the default" and is dropped; ``groups`` may
        be any sequence. One setting of ``groups`` serves every method: a one-group
        method (``lrRNN``) given several sizes takes their sum as its rank, so
        ``groups: [3, 3]`` fits a rank-6 lrRNN beside a 3 + 3 DisRNN.

        Raises:
            ValueError: as :meth:`create`.
        """
        opts = {k: v for k, v in dict(options or {}).items() if v is not None}
        if "groups" in opts:
            groups = _as_groups(opts["groups"])
            if method in METHODS and METHODS[method].one_group and "rank" not in opts:
                del opts["groups"]
                opts["rank"] = sum(groups)
            else:
                opts["groups"] = groups
        return cls.create(method, **opts)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; valid methods: {', '.join(METHODS)}")
        spec = METHODS[self.method]
        groups = _as_groups(self.groups)
        object.__setattr__(self, "groups", groups)
        if spec.one_group and len(groups) != 1:
            raise ValueError(
                f"method {self.method} has one latent group; give one size, e.g. "
                f"groups=({sum(groups)},) / --groups {sum(groups)}, got {groups}"
            )
        if self.beta is not None:
            object.__setattr__(self, "beta", _nonneg("beta", self.beta))
        object.__setattr__(self, "alpha", _nonneg("alpha", self.alpha))
        object.__setattr__(self, "weight_decay", _nonneg("weight_decay", self.weight_decay))
        _choice("likelihood", self.likelihood, LIKELIHOODS)
        _choice("link", self.link, LINKS)
        if self.kernel is not None:
            _choice("kernel", self.kernel, KERNELS)
        factors = (("sigma_scale", "sigma_q"), ("finetune_lr_scale", "lr"), ("kl_weight", "KL"))
        for name, of in factors:
            if getattr(self, name) is not None:
                f = _nonneg(name, getattr(self, name))
                if f == 0:
                    raise ValueError(f"{name} must be > 0 (a factor on {of}), got 0")
                object.__setattr__(self, name, f)
        _choice("sigma", self.sigma, SIGMAS)
        _choice("encoder", self.encoder, NETS)
        _choice("decoder", self.decoder, NETS)
        _choice("posthoc", self.posthoc, POSTHOC_KINDS)
        _choice("schedule", self.schedule, SCHEDULES)
        if self.init is not None:
            _choice("init", self.init, INITS)
        if self.history is not None:
            _positive_int("history", self.history)
        _positive_int("hidden", self.hidden)
        if self.epochs is not None:
            _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self.batch_size, minimum=2)
        for name in ("patience", "finetune_patience"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        _positive_int("checkpoint_every", self.checkpoint_every)
        _positive_int("restarts", self.restarts)
        if self.pc_batch is not None:
            _positive_int("pc_batch", self.pc_batch, minimum=2)
        w = _nonneg("warmup", self.warmup)
        if w > 1:
            raise ValueError(f"warmup is a fraction of the epochs in [0, 1], got {w!r}")
        object.__setattr__(self, "warmup", w)
        lr, number = self.lr, not isinstance(self.lr, bool) and isinstance(self.lr, int | float)
        if not (number and math.isfinite(lr) and lr > 0):
            hint = " (did you write 1-3 instead of 1e-3?)" if number and lr < 0 else ""
            raise ValueError(f"lr must be a positive number such as 1e-3, got {lr!r}{hint}")
        object.__setattr__(self, "lr", float(self.lr))

    # ----------------------------------------------------------------------- helpers
    @property
    def rank(self) -> int:
        """K, the number of latent dimensions."""
        return sum(self.groups)

    def resolve(self, kind: str, bin_width: float | None = None) -> FitConfig:
        """This config with every data-dependent default fixed for data of ``kind``.

        ``likelihood``, ``beta``, ``init`` as documented on the class; ``history`` None:
        spike counts get L = round(SPIKE_HISTORY_SECONDS / bin_width) bins (at least 1;
        1 when the bin width is unknown), continuous data L = 1; ``kernel`` None:
        ``learned`` for spike counts with L > 1, else ``fixed``; ``sigma_scale`` None:
        ``SIGMA_SCALE[kind]``; ``kl_weight`` None: ``default_kl_weight(kind, bin_width)``;
        ``finetune_lr_scale`` / ``finetune_patience`` None:
        ``FINETUNE_LR_SCALE[kind]`` / ``FINETUNE_PATIENCE[kind]``.

        Args:
            kind: the dataset's ``activity.attrs["kind"]``, ``spike_counts`` or ``continuous``.
            bin_width: seconds per bin (the dataset's ``bin_width`` attribute) or None.

        Raises:
            ValueError: unknown kind, or a bin width that is not a positive number.
        """
        _choice("data kind", kind, tuple(DEFAULT_BETA))
        likelihood = self.likelihood
        if likelihood == "auto":
            likelihood = "poisson" if kind == "spike_counts" else "gaussian"
        beta = self.beta
        if beta is None:
            beta = DEFAULT_BETA[kind] if len(self.groups) > 1 else 0.0
        init = self.init
        if init is None:
            init = DEFAULT_PC_INIT if beta > 0 and len(self.groups) > 1 else "random"
        history = self.history
        if history is None:
            history = default_history(kind, bin_width)
        kernel = self.kernel
        if kernel is None:
            kernel = "learned" if kind == "spike_counts" and history > 1 else "fixed"
        scale = SIGMA_SCALE[kind] if self.sigma_scale is None else self.sigma_scale
        kl = default_kl_weight(kind, bin_width) if self.kl_weight is None else self.kl_weight
        ft = self.finetune_lr_scale
        ft = FINETUNE_LR_SCALE[kind] if ft is None else ft
        ft_patience = self.finetune_patience
        ft_patience = FINETUNE_PATIENCE[kind] if ft_patience is None else ft_patience
        return dataclasses.replace(
            self, likelihood=likelihood, beta=beta, init=init, history=history, kernel=kernel,
            sigma_scale=scale, kl_weight=kl, finetune_lr_scale=ft, finetune_patience=ft_patience,
        )  # fmt: skip

    def resolve_steps(self, n_bins: int) -> FitConfig:
        """This config with ``epochs`` and ``patience`` fixed for ``n_bins`` training bins."""
        epochs = self.epochs
        if epochs is None:
            steps_per_epoch = max(n_bins // min(self.batch_size, max(n_bins, 1)), 1)
            epochs = int(min(300, max(30, round(TARGET_STEPS / steps_per_epoch))))
        patience = self.patience if self.patience is not None else max(10, epochs // 5)
        ft_patience = patience if self.finetune_patience is None else self.finetune_patience
        return dataclasses.replace(
            self, epochs=epochs, patience=patience, finetune_patience=ft_patience
        )

    def to_dict(self) -> dict:
        """JSON-ready dict; ``FitConfig.from_dict`` inverts it."""
        out = dataclasses.asdict(self)
        out["groups"] = list(self.groups)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> FitConfig:
        """Inverse of :meth:`to_dict` (unknown keys raise ``ValueError``); a dict without
        ``kl_weight`` was written before that option, when every fit's KL had weight 1."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown FitConfig key(s) {sorted(unknown)} in config")
        return cls(**{"kl_weight": 1.0, **data, "groups": tuple(data.get("groups", (3, 3)))})


def _as_groups(groups: Any) -> tuple[int, ...]:
    if isinstance(groups, int) and not isinstance(groups, bool):
        groups = (groups,)
    try:
        out = tuple(groups)
    except TypeError:
        raise ValueError(
            f"groups must be a sequence of group sizes such as (3, 3), got {groups!r}"
        ) from None
    if not out:
        raise ValueError("groups must list at least one group size, got an empty list; e.g. (3, 3)")
    for g in out:
        if isinstance(g, bool) or not isinstance(g, int) or g < 1:
            raise ValueError(
                f"every group size must be a positive integer, got {g!r} in {out}; e.g. (3, 3)"
            )
    return tuple(int(g) for g in out)
