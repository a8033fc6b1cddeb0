"""One self-contained HTML report per session, and the summary index over all sessions."""


rule session_report:
    input:
        unpack(session_report_inputs),
    output:
        html=report(
            f"{RESULTS}/reports/{{session}}.html",
            caption="../report/session.rst",
            category="{session}",
            subcategory="report",
            labels={"session": "{session}", "figure": "session report"},
        ),
        # the report's figures as PNG files, drawn once with the HTML
        figures=report(
            directory(f"{RESULTS}/reports/figures/{{session}}"),
            patterns=["{group}/{name}.png"],
            caption="../report/figure.rst",
            category="{session}",
            subcategory="{group}",
            labels={
                "session": "{session}",
                "method or part": "{group}",
                "figure": "{name}",
            },
        ),
    log:
        f"{LOGS}/reports/{{session}}.log",
    conda:
        "../../environment.yml"
    threads: rule_resource("report", "threads")
    resources:
        mem_mb=rule_resource("report", "mem_mb"),
        runtime=rule_resource("report", "runtime"),
    params:
        session="{session}",
    script:
        "../scripts/report_session.py"


rule summary_report:
    input:
        metrics=all_evals(),
        selections=all_selections(),
        sessions=expand(f"{RESULTS}/reports/{{session}}.html", session=SESSIONS),
    output:
        html=report(
            f"{RESULTS}/reports/index.html",
            caption="../report/summary.rst",
            category="Summary",
            labels={"figure": "summary over sessions"},
        ),
    log:
        f"{LOGS}/reports/index.log",
    conda:
        "../../environment.yml"
    threads: rule_resource("summary", "threads")
    resources:
        mem_mb=rule_resource("summary", "mem_mb"),
        runtime=rule_resource("summary", "runtime"),
    script:
        "../scripts/report_summary.py"
