"""Rules fit and fit_posthoc: fit one method with one seed to one session's dataset.

snakemake.input.dataset: the binned dataset; snakemake.input.init (post-hoc methods only):
the ``fit_info.json`` of the lrRNN fit of the same seed, whose folder is transformed;
snakemake.input.selection (``groups: auto`` only): the session's selection.json, whose
partition replaces ``auto``.
snakemake.params: ``method``, ``seed``, ``device`` and ``options`` (the session's FitConfig
options, given to :meth:`disrnn.fit.config.FitConfig.from_options` as they are, the
same call as ``disrnn fit``'s).
snakemake.output.info: ``<fit folder>/fit_info.json``, which :func:`disrnn.fit.fit`
writes last, so a folder without it is unfinished; a killed fit resumes from the
checkpoint beside the folder, ``.<fit folder name>.checkpoint.pt``.
"""

import logging
from pathlib import Path

import torch

from disrnn.fit import fit
from disrnn.fit.config import FitConfig
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
        out = Path(smk.output.info).parent
        init_from = str(Path(smk.input.init).parent) if "init" in smk.input.keys() else None
        torch.set_num_threads(smk.threads)
        selection = smk.input.selection if "selection" in smk.input.keys() else None
        config = fit_config(smk.params, selection)
        logging.info(
            "fit %s seed %s on %s (device %s, init_from %s): %s",
            smk.params.method,
            smk.params.seed,
            smk.input.dataset,
            smk.params.device,
            init_from,
            config,
        )
        fit(
            smk.input.dataset,
            config,
            out,
            seed=int(smk.params.seed),
            device=smk.params.device,
            init_from=init_from,
            progress=False,
            force=True,  # Snakemake owns the folder (it removed the fit_info.json it reruns)
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
