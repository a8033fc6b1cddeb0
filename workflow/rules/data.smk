"""Obtain each session's NWB file (simulate or download; local files are used in place)
and bin it into results/{session}/dataset.nc."""


# DANDI downloads run on the submitting host: cluster nodes often have no internet.
localrules:
    fetch_dandi,


rule simulate_session:
    output:
        nwb=f"{RESOURCES}/simulated/{{session}}.nwb",
    log:
        f"{LOGS}/{{session}}/simulate.log",
    conda:
        "../../environment.yml"
    threads: rule_resource("simulate", "threads")
    resources:
        mem_mb=rule_resource("simulate", "mem_mb"),
        runtime=rule_resource("simulate", "runtime"),
    params:
        options=simulate_options,
    script:
        "../scripts/simulate.py"


rule fetch_dandi:
    output:
        nwb=f"{RESOURCES}/dandi/{{dandiset}}/{{version}}/{{asset}}",
        sidecar=f"{RESOURCES}/dandi/{{dandiset}}/{{version}}/{{asset}}.dandi.json",
    log:
        f"{LOGS}/dandi/{{dandiset}}/{{version}}/{{asset}}.log",
    wildcard_constraints:
        version=r"latest|draft|\d+\.\d+\.\d+",
        asset=r"[^.][^/]*(/[^/.][^/]*)*\.nwb",
    conda:
        "../../environment.yml"
    threads: rule_resource("fetch", "threads")
    resources:
        mem_mb=rule_resource("fetch", "mem_mb"),
        runtime=rule_resource("fetch", "runtime"),
        downloads=1,
    params:
        source=dandi_source,
    script:
        "../scripts/fetch.py"


rule bin_session:
    input:
        nwb=lambda wc: nwb_path(wc.session),
    output:
        dataset=f"{RESULTS}/{{session}}/dataset.nc",
    log:
        f"{LOGS}/{{session}}/bin.log",
    conda:
        "../../environment.yml"
    threads: rule_resource("bin", "threads")
    resources:
        mem_mb=rule_resource("bin", "mem_mb"),
        runtime=rule_resource("bin", "runtime"),
    params:
        options=bin_options,
    script:
        "../scripts/bin.py"
