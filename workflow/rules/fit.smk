"""Fit every configured method x seed. A fit folder is finished when its fit_info.json
exists (the package writes the folder atomically); a killed fit leaves
.<folder>.checkpoint.pt beside each seed's folder, which the re-run resumes from.
Post-hoc methods (lrRNN+ICA, LINT) transform the lrRNN fit of the same seed. A session
with fit: {groups: auto} fits the groups its selection chose (input `selection`)."""

# All seeds of a (session, method) are one job: disrnn.fit.train.fit_seeds trains them
# together (their networks stacked along a seed dimension); post-hoc methods transform
# every seed's lrRNN in one process. A rule's outputs must be patterns of its wildcards,
# so there is one such rule per distinct seed list of the config (one for the default
# config, named fit), each for the sessions with that list.
for _n, (_seeds, _members) in enumerate(SEED_LISTS.items()):

    rule:
        name:
            "fit" if _n == 0 else f"fit_{_n}"
        input:
            unpack(dataset_inputs),
        output:
            [fit_info("{session}", "{method}", s) for s in _seeds],
        log:
            f"{LOGS}/{{session}}/fit/{{method}}/seeds.log",
        wildcard_constraints:
            method=_escape(TRAINED_METHODS),
            session=_escape(_members),
        conda:
            "../../environment.yml"
        threads: rule_resource("fit", "threads")
        resources:
            mem_mb=rule_resource("fit", "mem_mb"),
            runtime=rule_resource("fit", "runtime"),
            gpu=1 if DEVICE == "cuda" else 0,
        params:
            method="{method}",
            seeds=list(_seeds),
            device=DEVICE,
            options=fit_options,
        script:
            "../scripts/fit.py"

    # lrRNN+ICA and LINT transform the lrRNN fit of each seed, all seeds in one job.
    rule:
        name:
            "fit_posthoc" if _n == 0 else f"fit_posthoc_{_n}"
        input:
            unpack(fit_posthoc_inputs),
        output:
            [fit_info("{session}", "{method}", s) for s in _seeds],
        log:
            f"{LOGS}/{{session}}/fit/{{method}}/seeds.log",
        wildcard_constraints:
            method=_escape(POSTHOC_METHODS),
            session=_escape(_members),
        conda:
            "../../environment.yml"
        threads: rule_resource("posthoc", "threads")
        resources:
            mem_mb=rule_resource("posthoc", "mem_mb"),
            runtime=rule_resource("posthoc", "runtime"),
        params:
            method="{method}",
            seeds=list(_seeds),
            device="cpu",
            options=fit_options,
        script:
            "../scripts/fit.py"
