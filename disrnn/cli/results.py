"""The subcommands after a fit: ``disrnn evaluate``, ``disrnn reference`` and ``disrnn report``."""

from __future__ import annotations

from disrnn.cli._common import add_out


# ---------------------------------------------------------------------------- evaluate
def add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a fit on the test trials",
        description="Write EVALDIR/metrics.json (test-split metrics) and EVALDIR/latents.nc "
        "(latents of every trial with its split).",
    )
    p.add_argument("fit", help="fit folder from `disrnn fit`")
    p.add_argument("dataset", help="the dataset the fit was trained on (.nc)")
    add_out(p, "evaluation folder")
    p.add_argument("--seed", type=int, default=0, help="seed of Monte Carlo estimates and rollouts")
    p.add_argument(
        "--allow-other-dataset",
        action="store_true",
        help="evaluate on a dataset other than the fit's (refused by default: the metrics "
        "would not be the fit's)",
    )
    p.add_argument(
        "--posterior-from",
        metavar="EVALDIR",
        help="reuse the smoothing posterior of this evaluation when its fit has the same "
        "W = A B and bias A b + a (e.g. the lrRNN of an lrRNN+ICA or LINT fit); else the "
        "posterior is trained",
    )
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args) -> None:
    from disrnn.evaluation import evaluate

    out = evaluate(
        args.fit,
        args.dataset,
        args.out,
        seed=args.seed,
        allow_other_dataset=args.allow_other_dataset,
        force=args.force,
        posterior_from=args.posterior_from,
    )
    print(out)


# --------------------------------------------------------------------------- reference
def add_reference(sub) -> None:
    from disrnn.evaluation.run_reference import REFERENCE_METHODS

    p = sub.add_parser(
        "reference",
        help="score a community reference (smoothing or PCA) on the test trials",
        description="Write DIR/metrics.json with the evaluation's keys for the reference: "
        "NLB's smoothed-spikes co-smoothing baseline and its causal twin of past bins only "
        "(co_bps_causal, the reference of a fit's one-step co_bps; spike counts with "
        "held-out units) or K principal components as latents (otherwise).",
    )
    p.add_argument("dataset", help="binned dataset (.nc) from `disrnn bin`")
    add_out(p, "reference folder")
    p.add_argument(
        "--method",
        choices=("auto", *REFERENCE_METHODS),
        default="auto",
        help="auto (default): smoothing for spike counts with held-out units, else pca",
    )
    p.add_argument(
        "--components", type=int, default=None, metavar="K", help="PCA latents (needed by pca)"
    )
    p.add_argument(
        "--condition",
        default=None,
        metavar="COLUMN",
        help="trial coord of the conditions (PSTHs, decoding; default: condition)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the folds and classifiers")
    p.add_argument(
        "--history",
        type=int,
        default=None,
        metavar="L",
        help="the fits' history bins, so the reference scores the bins they score "
        "(default: the L of a fit with default options; 0: every observed bin)",
    )
    p.set_defaults(func=_run_reference)


def _run_reference(args) -> None:
    from disrnn.evaluation import run_reference

    out = run_reference(
        args.dataset,
        args.out,
        method=args.method,
        n_components=args.components,
        seed=args.seed,
        condition=args.condition,
        history=args.history,
        force=args.force,
    )
    print(out)


# ------------------------------------------------------------------------------ report
def add_report(sub) -> None:
    p = sub.add_parser("report", help="render HTML reports from evaluated fits")
    rsub = p.add_subparsers(dest="report_kind", required=True)
    s = rsub.add_parser("session", help="one session's report")
    s.add_argument("--dataset", required=True, help="the session's dataset (.nc)")
    s.add_argument("--evals", nargs="+", required=True, help="evaluation folders of this session")
    s.add_argument("--session", required=True, help="session id shown in the report")
    s.add_argument(
        "--selection", default=None, help="the session's selection folder (`disrnn select`)"
    )
    add_out(s, "output .html")
    s.set_defaults(func=_run_report_session)
    m = rsub.add_parser("summary", help="the summary over sessions")
    m.add_argument("--evals", nargs="+", required=True, help="evaluation folders of all sessions")
    m.add_argument("--selections", nargs="*", default=[], help="selection folders of the sessions")
    add_out(m, "output index.html")
    m.set_defaults(func=_run_report_summary)


def _run_report_session(args) -> None:
    from disrnn._outputs import check_output
    from disrnn.report import render_session_report

    check_output(args.out, "report", inputs=[args.dataset, *args.evals], force=args.force)
    print(render_session_report(args.session, args.dataset, args.evals, args.out, args.selection))


def _run_report_summary(args) -> None:
    from disrnn._outputs import check_output
    from disrnn.report import render_summary_report

    check_output(args.out, "report", inputs=args.evals, force=args.force)
    print(render_summary_report(args.evals, args.out, args.selections))
