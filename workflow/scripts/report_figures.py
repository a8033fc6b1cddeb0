"""Rule session_figures: the session report's figures as PNG files, for `snakemake --report`.

snakemake.input.dataset / snakemake.input.metrics / snakemake.input.selection: as for the
session report;
snakemake.params.session: the session id. snakemake.output.figures: a folder with
``overview/``, ``comparison/`` and one subfolder per method, written atomically by
:func:`disrnn.report.export_session_figures`.
"""

import logging
from pathlib import Path

from disrnn.logs import log_to_file
from disrnn.report import export_session_figures


def main(smk) -> None:
    with log_to_file(smk.log[0]):
        eval_dirs = [str(Path(m).parent) for m in smk.input.metrics]
        sel = str(Path(smk.input.selection).parent) if "selection" in smk.input.keys() else None
        written = export_session_figures(
            smk.params.session, smk.input.dataset, eval_dirs, smk.output.figures, selection=sel
        )
        logging.info("wrote %d figures to %s", len(written), smk.output.figures)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
