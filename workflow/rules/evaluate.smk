"""Evaluate every fit on its session's test trials, and score the session's reference
(smoothing or PCA, chosen by the binned data) on the same trials."""


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
    wildcard_constraints:
        method=_escape(METHODS),
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


rule reference:
    input:
        unpack(dataset_inputs),
    output:
        metrics=report(
            f"{RESULTS}/{{session}}/evals/{REFERENCE}/seed0/metrics.json",
            caption="../report/metrics.rst",
            category="{session}",
            subcategory=REFERENCE,
            labels={"session": "{session}", "method": REFERENCE, "seed": "0"},
        ),
    log:
        f"{LOGS}/{{session}}/evaluate/{REFERENCE}/seed0.log",
    conda:
        "../../environment.yml"
    threads: rule_resource("reference", "threads")
    resources:
        mem_mb=rule_resource("reference", "mem_mb"),
        runtime=rule_resource("reference", "runtime"),
    params:
        options=reference_options,
    script:
        "../scripts/reference.py"
