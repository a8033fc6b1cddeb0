"""Rule session_report: one self-contained HTML report of one session, and its figures as
PNG files (for `snakemake --report`).

snakemake.input.dataset: the session's dataset; snakemake.input.metrics: the
``metrics.json`` of every evaluation of the session (their folders are the evaluations);
snakemake.input.selection (when the session runs one): its selection.json.
snakemake.params.session: the session id. snakemake.output.html and
snakemake.output.figures (a folder with ``overview/``, ``comparison/`` and one subfolder
per method): written by :func:`disrnn.report.render_session_report`.
"""

from pathlib import Path

from disrnn.logs import log_to_file
from disrnn.report import render_session_report


def main(smk) -> None:
    with log_to_file(smk.log[0]):
        eval_dirs = [str(Path(m).parent) for m in smk.input.metrics]
        sel = str(Path(smk.input.selection).parent) if "selection" in smk.input.keys() else None
        render_session_report(
            smk.params.session,
            smk.input.dataset,
            eval_dirs,
            smk.output.html,
            selection=sel,
            figures_dir=smk.output.figures,
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
