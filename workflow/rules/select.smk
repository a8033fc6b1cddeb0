"""How many modules: the model selection of each session that runs one (select.enabled),
read by its report and, with fit: {groups: auto}, by its fits."""


rule select:
    input:
        dataset=f"{RESULTS}/{{session}}/dataset.nc",
    output:
        selection=report(
            f"{RESULTS}/{{session}}/selection/selection.json",
            caption="../report/selection.rst",
            category="{session}",
            subcategory="selection",
            labels={"session": "{session}", "figure": "model selection"},
        ),
    log:
        f"{LOGS}/{{session}}/select.log",
    # a session's longest job (a grid of fits) and needed only by its report: start it
    # before the fits and evaluations that queue with it, so it does not end last
    priority: 1
    conda:
        "../../environment.yml"
    threads: rule_resource("select", "threads")
    resources:
        mem_mb=rule_resource("select", "mem_mb"),
        runtime=rule_resource("select", "runtime"),
        gpu=1 if DEVICE == "cuda" else 0,
    params:
        options=select_params,
        device=DEVICE,
    script:
        "../scripts/select.py"
