"""Rule reference: the session's reference (smoothing or PCA, chosen by the dataset).

snakemake.input.dataset: the session's dataset; snakemake.params.options:
:func:`disrnn.evaluation.run_reference` options (``n_components`` = the session's DisRNN
rank, the smoothing grid; None = the package's default; with ``groups: auto`` the rank the
input ``selection`` chose); snakemake.wildcards.session: the
session id the metrics record. snakemake.output.metrics: ``<folder>/metrics.json``,
written with the rest of the folder by :func:`disrnn.evaluation.run_reference` (seed 0).
"""

import logging
from pathlib import Path

from disrnn.evaluation import run_reference
from disrnn.logs import log_to_file
from disrnn.selection import selected_groups


def main(smk) -> None:
    with log_to_file(smk.log[0]):
        out = Path(smk.output.metrics).parent
        logging.info("reference of %s -> %s", smk.input.dataset, out)
        options = dict(smk.params.options)
        if "selection" in smk.input.keys():
            options["n_components"] = sum(selected_groups(smk.input.selection))
        run_reference(
            smk.input.dataset,
            out,
            seed=0,
            session=smk.wildcards.session,
            force=True,  # Snakemake owns the folder (it removed the metrics.json it reruns)
            **options,
        )
        if not (out / "metrics.json").is_file():
            raise RuntimeError(f"run_reference() wrote no {out / 'metrics.json'}")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
