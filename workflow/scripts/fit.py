"""Rules fit and fit_posthoc: fit one method to one session's dataset, every seed of the
session in one job (:func:`disrnn.fit.train.fit_seeds`; rule fit trains the seeds
together, rule fit_posthoc transforms each seed's lrRNN).

snakemake.input.dataset: the binned dataset; snakemake.input.init (post-hoc methods only):
the ``fit_info.json`` of the lrRNN fit of each seed, in the order of ``seeds``, whose
folders are transformed;
snakemake.input.selection (``groups: auto`` only): the session's selection.json, whose
partition replaces ``auto``.
snakemake.params: ``method``, ``seeds`` (one per output), ``device`` and ``options`` (the session's FitConfig
options, given to :meth:`disrnn.fit.config.FitConfig.from_options` as they are, the
same call as ``disrnn fit``'s).
snakemake.output: each seed's ``<fit folder>/fit_info.json``, in the order of ``seeds``,
which the package writes last, so a folder without it is unfinished; a killed fit
resumes every seed from the checkpoint beside its folder, ``.<fit folder name>.checkpoint.pt``.
"""

import logging
from pathlib import Path

import torch

from disrnn.fit.config import FitConfig
from disrnn.fit.train import fit_seeds
from disrnn.logs import log_to_file
from disrnn.selection import selected_groups


def fit_config(params, selection=None) -> FitConfig:
    """The FitConfig of the rule's ``params`` (``method``, ``options``); ``groups: auto``
    takes the groups of the ``selection`` (its selection.json)."""
    options = dict(params.options)
    if options.get("groups") == "auto":
        options["groups"] = selected_groups(selection)
    return FitConfig.from_options(params.method, options)


def main(smk) -> None:
    with log_to_file(smk.log[0], append=True):
        outs = [Path(info).parent for info in smk.output]
        seeds = [int(s) for s in smk.params.seeds]
        init_from = None
        if "init" in smk.input.keys():
            inits = smk.input.init
            inits = [inits] if isinstance(inits, str) else list(inits)
            init_from = [str(Path(info).parent) for info in inits]
        torch.set_num_threads(smk.threads)
        selection = smk.input.selection if "selection" in smk.input.keys() else None
        config = fit_config(smk.params, selection)
        logging.info(
            "fit %s seeds %s on %s (device %s, init_from %s): %s",
            smk.params.method,
            seeds,
            smk.input.dataset,
            smk.params.device,
            init_from,
            config,
        )
        fit_seeds(
            smk.input.dataset,
            config,
            outs,
            seeds,
            device=smk.params.device,
            init_from=init_from,
            progress=False,
            force=True,  # Snakemake owns the folders (it removed the fit_info.json it reruns)
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
