"""``disrnn fit``: the model options come from :mod:`disrnn.fit.config`."""

from __future__ import annotations

import argparse

from disrnn.cli._common import add_out


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--groups takes comma-separated integer group sizes such as 3,3; got {text!r}"
        ) from None


# --------------------------------------------------------------------------------- fit
def _fit_options():
    """(FitConfig field, argparse keywords) of ``disrnn fit``'s model options; defaults
    and choices come from :mod:`disrnn.fit.config` (never typed here)."""
    from disrnn.fit import config as fc
    from disrnn.fit.defaults import KL_REFERENCE_BIN_SECONDS as kl_bin

    def default(name):
        return f"default {getattr(fc.FitConfig, name)}"

    return (
        ("groups", {"type": _int_list, "help": "latent group sizes, e.g. 3,3 (sum = rank "
                    "K; a one-group method fits one group of the sum; default: the method's)"}),
        ("beta", {"type": float, "help": "partial-correlation weight (default: by data kind, "
                  f"{fc.DEFAULT_BETA})"}),
        ("alpha", {"type": float, "help": "block-diagonal penalty weight (bdRNN; default: the method's)"}),
        ("likelihood", {"choices": fc.LIKELIHOODS, "help": "observation model (auto: poisson "
                        f"for spike counts, gaussian for continuous; {default('likelihood')})"}),
        ("link", {"choices": fc.LINKS, "help": f"Poisson link ({default('link')})"}),
        ("history", {"type": int, "help": f"history length L in bins ({default('history')})"}),
        ("kernel", {"choices": fc.KERNELS, "help": f"history kernel for L > 1 ({default('kernel')})"}),
        ("sigma", {"choices": fc.SIGMAS, "help": f"encoder sd: rule of thumb or learned ({default('sigma')})"}),
        ("kl_weight", {"type": float, "help": "weight of the KL term (default: bin width / "
                       f"{kl_bin} s for spike counts, 1 for continuous data)"}),
        ("hidden", {"type": int, "help": f"hidden units of MLP encoder/decoder ({default('hidden')})"}),
        ("epochs", {"type": int, "help": f"maximum passes over the training bins (default: about "
                    f"{fc.TARGET_STEPS} optimizer steps)"}),
        ("batch_size", {"type": int, "help": f"bins per mini-batch ({default('batch_size')})"}),
        ("lr", {"type": float, "help": f"AdamW learning rate ({default('lr')})"}),
        ("weight_decay", {"type": float, "help": f"AdamW weight decay ({default('weight_decay')})"}),
        ("schedule", {"choices": fc.SCHEDULES, "help": f"learning-rate schedule ({default('schedule')})"}),
        ("warmup", {"type": float, "help": f"fraction of epochs over which beta and alpha ramp up ({default('warmup')})"}),
        ("patience", {"type": int, "help": "early-stopping patience in epochs (default: max(10, epochs // 5))"}),
        ("checkpoint_every", {"type": int, "help": f"epochs between checkpoints ({default('checkpoint_every')})"}),
        ("init", {"choices": fc.INITS, "help": f"initialisation (default: {fc.DEFAULT_PC_INIT} "
                  "for methods with a PC penalty, else random)"}),
        ("restarts", {"type": int, "help": "initialisations fitted, the lowest validation "
                      f"objective kept ({default('restarts')})"}),
        ("pc_batch", {"type": int, "help": "bins of the separate batch PC is estimated on "
                      "(default: the likelihood batch)"}),
        ("finetune_lr_scale", {"type": float, "help": "factor on lr after the rotation init "
                               f"(default by data kind: {fc.FINETUNE_LR_SCALE})"}),
        ("finetune_patience", {"type": int, "help": "patience after the rotation init (default "
                               f"by data kind: {fc.FINETUNE_PATIENCE}; None: --patience)"}),
    )  # fmt: skip


def add_fit(sub) -> None:
    from disrnn.fit.config import METHODS

    p = sub.add_parser(
        "fit",
        help="fit one method (DisRNN or a baseline) to a binned dataset",
        description="Fit on the 'train' trials with early stopping on 'val'. The fit folder "
        "holds config.json, weights.pt, losses.csv and a checkpoint a killed run resumes from.",
    )
    p.add_argument("dataset", help="binned dataset (.nc) from `disrnn bin`")
    p.add_argument("--method", required=True, choices=list(METHODS), help="model or baseline")
    add_out(p, "fit folder")
    for name, kwargs in _fit_options():
        p.add_argument("--" + name.replace("_", "-"), dest=name, default=None, **kwargs)
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="torch device")
    p.add_argument(
        "--init-from", default=None, help="lrRNN fit folder that post-hoc methods transform"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_run_fit)


def fit_config(args: argparse.Namespace):
    """The FitConfig of parsed ``disrnn fit`` arguments (:meth:`FitConfig.from_options`)."""
    from disrnn.fit.config import FitConfig

    options = {name: getattr(args, name) for name, _ in _fit_options()}
    return FitConfig.from_options(args.method, options)


def _run_fit(args) -> None:
    from disrnn.fit import fit

    out = fit(
        args.dataset,
        fit_config(args),
        args.out,
        seed=args.seed,
        device=args.device,
        init_from=args.init_from,
        progress=not args.no_progress,
        force=args.force,
    )
    print(out)
