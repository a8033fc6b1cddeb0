"""HTML reports from evaluation folders: one per session and a summary over sessions.

- :func:`render_session_report` (``disrnn report session``)
- :func:`render_summary_report` (``disrnn report summary``)
- :func:`load_eval` reads one evaluation folder (metrics, latents, connectivity, rollout,
  and the fit folder's losses and config) for figures of your own (``disrnn.plotting``).
"""

from disrnn.report.html import render_session_report, render_summary_report
from disrnn.report.results import EvalResult, load_eval

__all__ = ["EvalResult", "load_eval", "render_session_report", "render_summary_report"]
