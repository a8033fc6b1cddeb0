"""HTML reports from evaluation folders: one per session and a summary over sessions.

- :func:`render_session_report` (``disrnn report session``)
- :func:`render_summary_report` (``disrnn report summary``)
- :func:`export_session_figures` writes the session report's figures as PNG files
  (for ``snakemake --report`` items grouped by session and method)
- :func:`load_eval` reads one evaluation folder (metrics, latents, connectivity, rollout,
  and the fit folder's losses and config) for figures of your own (``disrnn.plotting``).
"""

from disrnn.report.html import export_session_figures, render_session_report
from disrnn.report.results import EvalResult, load_eval
from disrnn.report.summary import render_summary_report

__all__ = [
    "EvalResult",
    "export_session_figures",
    "load_eval",
    "render_session_report",
    "render_summary_report",
]
