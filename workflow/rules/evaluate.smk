"""Evaluate every fit on its session's test trials."""


rule evaluate:
    input:
        fit=f"{RESULTS}/{{session}}/fits/{{method}}/seed{{seed}}/fit_info.json",
        dataset=f"{RESULTS}/{{session}}/dataset.nc",
    output:
        metrics=report(
            f"{RESULTS}/{{session}}/evals/{{method}}/seed{{seed}}/metrics.json",
            caption="../report/metrics.rst",
            category="{session}",
            subcategory="{method}",
            labels={"session": "{session}", "method": "{method}", "seed": "{seed}"},
        ),
    log:
        f"{LOGS}/{{session}}/evaluate/{{method}}/seed{{seed}}.log",
    conda:
        "../../environment.yml"
    threads: rule_resource("evaluate", "threads")
    resources:
        mem_mb=rule_resource("evaluate", "mem_mb"),
        runtime=rule_resource("evaluate", "runtime"),
    params:
        seed=config["evaluate"]["seed"],
    script:
        "../scripts/evaluate.py"
