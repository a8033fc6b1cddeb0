"""disrnn: NWB sessions -> binned datasets -> DisRNN fits and baselines per seed ->
evaluations -> HTML reports. Wiring only; the stages live in workflow/rules/*.smk and
the science in the `disrnn` package.

    snakemake --cores 8                                # the built-in default config
    snakemake --cores 8 --configfile my.yaml           # your sessions
    snakemake --workflow-profile workflow/profiles/slurm --configfile my.yaml
"""

import os

from snakemake.utils import min_version

min_version("8.0")

# Every job inherits these (glibc's malloc; other C libraries ignore them): freed memory
# is kept for reuse instead of each large tensor being mapped, faulted in and unmapped
# again (a fit allocates MBs per step, the rotation search ~60 MB blocks, so a 32 MiB
# threshold still left 25 M page faults). The default run without them: 41 M page
# faults, 131 s of system time; with them 4-7 M and 41-54 s. A variable already set in
# the environment wins.
for _name, _value in {
    "MALLOC_MMAP_THRESHOLD_": "1073741824",  # 1 GiB
    "MALLOC_TRIM_THRESHOLD_": "268435456",
    "MALLOC_TOP_PAD_": "67108864",
}.items():
    os.environ.setdefault(_name, _value)


# the default config sits beside this file, also when run with --directory elsewhere;
# a --configfile is laid over it (mappings merged key by key, lists replaced)
configfile: os.path.join(workflow.basedir, "config", "config.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/select.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        f"{RESULTS}/reports/index.html",
        # the report's figures as files, for `snakemake --report report.zip`
        expand(f"{RESULTS}/reports/figures/{{session}}", session=SESSIONS),
