"""Fit every configured method x seed. A fit folder is finished when its fit_info.json
exists (the package writes the folder atomically); a killed fit leaves
.<folder>.checkpoint.pt beside it, which the re-run resumes from.
Post-hoc methods (lrRNN+ICA, LINT) transform the lrRNN fit of the same seed. A session
with fit: {groups: auto} fits the groups its selection chose (input `selection`)."""


rule fit:
    input:
        unpack(dataset_inputs),
    output:
        info=f"{RESULTS}/{{session}}/fits/{{method}}/seed{{seed}}/fit_info.json",
    log:
        f"{LOGS}/{{session}}/fit/{{method}}/seed{{seed}}.log",
    wildcard_constraints:
        method=_escape(TRAINED_METHODS),
    conda:
        "../../environment.yml"
    threads: rule_resource("fit", "threads")
    resources:
        mem_mb=rule_resource("fit", "mem_mb"),
        runtime=rule_resource("fit", "runtime"),
        gpu=1 if DEVICE == "cuda" else 0,
    params:
        method="{method}",
        seed="{seed}",
        device=DEVICE,
        options=fit_options,
    script:
        "../scripts/fit.py"


rule fit_posthoc:
    input:
        unpack(fit_posthoc_inputs),
    output:
        info=f"{RESULTS}/{{session}}/fits/{{method}}/seed{{seed}}/fit_info.json",
    log:
        f"{LOGS}/{{session}}/fit/{{method}}/seed{{seed}}.log",
    wildcard_constraints:
        method=_escape(POSTHOC_METHODS),
    conda:
        "../../environment.yml"
    threads: rule_resource("posthoc", "threads")
    resources:
        mem_mb=rule_resource("posthoc", "mem_mb"),
        runtime=rule_resource("posthoc", "runtime"),
    params:
        method="{method}",
        seed="{seed}",
        device="cpu",
        options=fit_options,
    script:
        "../scripts/fit.py"
