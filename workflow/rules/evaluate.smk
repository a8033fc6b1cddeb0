"""Evaluate every fit on its session's test trials, and score the session's reference
(smoothing or PCA, chosen by the binned data) on the same trials."""

# All seeds of a (session, method) are evaluated in one job (one process: the imports
# and the dataset are loaded once); one rule per distinct seed list, as for the fits.
for _n, (_seeds, _members) in enumerate(SEED_LISTS.items()):

    rule:
        name:
            "evaluate" if _n == 0 else f"evaluate_{_n}"
        input:
            fits=[fit_info("{session}", "{method}", s) for s in _seeds],
            dataset=f"{RESULTS}/{{session}}/dataset.nc",
            posterior_from=lambda w, seeds=_seeds: posterior_sources(w, seeds),
        output:
            [
                report(
                    eval_metrics("{session}", "{method}", s),
                    caption="../report/metrics.rst",
                    category="{session}",
                    subcategory="{method}",
                    labels={
                        "session": "{session}",
                        "method": "{method}",
                        "seed": str(s),
                    },
                )
                for s in _seeds
            ],
        log:
            f"{LOGS}/{{session}}/evaluate/{{method}}/seeds.log",
        wildcard_constraints:
            method=_escape(METHODS),
            session=_escape(_members),
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
