"""Rule summary_report: the summary over all sessions, linking to each session's report.

snakemake.input.metrics: the ``metrics.json`` of every evaluation of every session;
snakemake.input.selections: the selection.json of every session that runs a selection;
snakemake.input.sessions: the session reports it links to. snakemake.output.html:
``<results>/reports/index.html``, written by :func:`disrnn.report.render_summary_report`.
"""

from pathlib import Path

from disrnn.logs import log_to_file
from disrnn.report import render_summary_report


def main(smk) -> None:
    with log_to_file(smk.log[0]):
        eval_dirs = [str(Path(m).parent) for m in smk.input.metrics]
        selections = [str(Path(s).parent) for s in smk.input.selections]
        render_summary_report(eval_dirs, smk.output.html, selections=selections)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
