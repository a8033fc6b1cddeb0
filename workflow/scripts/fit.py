"""Rules fit and fit_posthoc: fit one method with one seed to one session's dataset.

snakemake.input.dataset: the binned dataset; snakemake.input.init (post-hoc methods only):
the ``fit_info.json`` of the lrRNN fit of the same seed, whose folder is transformed.
snakemake.params: ``method``, ``seed``, ``device`` and ``options`` (keyword arguments of
:meth:`disrnn.models.config.FitConfig.create`; ``groups`` is given to one-group methods
as their rank, the sum of the sizes).
snakemake.output.info: ``<fit folder>/fit_info.json``, which :func:`disrnn.training.fit`
writes last, so a folder without it is unfinished; a killed fit resumes from the
checkpoint beside the folder, ``.<fit folder name>.checkpoint.pt``.
"""

import logging
from pathlib import Path

import torch

from disrnn.logs import log_to_file
from disrnn.models.config import FitConfig
from disrnn.models.methods import METHODS
from disrnn.training import fit


def main(smk) -> None:
    method = smk.params.method
    options = dict(smk.params.options)
    groups = options.pop("groups", None)
    if groups is not None:
        if METHODS[method].one_group:
            options["rank"] = sum(groups)
        else:
            options["groups"] = tuple(groups)
    out = Path(smk.output.info).parent
    init_from = str(Path(smk.input.init).parent) if "init" in smk.input.keys() else None
    torch.set_num_threads(smk.threads)
    with log_to_file(smk.log[0], append=True):
        config = FitConfig.create(method, **options)
        logging.info(
            "fit %s seed %s on %s (device %s, init_from %s): %s",
            method,
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
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
