"""Rule select: the session's model selection (how many modules, of what sizes).

snakemake.input.dataset: the binned dataset. snakemake.params.options: ``config`` (the
session's :class:`disrnn.selection.config.SelectConfig` options) and ``method_options``
(the session's fit options of lrRNN and DisRNN); snakemake.params.device.
snakemake.output.selection: ``<selection folder>/selection.json``, written last with the
folder by :func:`disrnn.selection.select`.
"""

import logging
from pathlib import Path

import torch

from disrnn.logs import log_to_file
from disrnn.selection import SelectConfig, select


def main(smk) -> None:
    with log_to_file(smk.log[0]):
        out = Path(smk.output.selection).parent
        torch.set_num_threads(smk.threads)
        config = SelectConfig.from_options(smk.params.options["config"])
        logging.info("select on %s -> %s: %s", smk.input.dataset, out, config)
        select(
            smk.input.dataset,
            out,
            config,
            method_options=smk.params.options["method_options"],
            device=smk.params.device,
            session=smk.wildcards.session,
            force=True,  # Snakemake owns the folder (it removed the selection.json it reruns)
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
