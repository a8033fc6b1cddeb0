"""Rule evaluate: test-split metrics and latents of every seed's fit of one (session,
method), one after another in one process.

snakemake.input.fits: each seed's ``fit_info.json`` (its folder is the fit), in the order
of the outputs;
snakemake.input.dataset: the dataset they were trained on; snakemake.input.posterior_from:
for a post-hoc method, each seed's lrRNN ``metrics.json`` (its smoothing posterior is
reused where it is this fit's), else empty; snakemake.params.seed: seed of
the Monte Carlo estimates and rollouts; snakemake.wildcards.session: the session id the
metrics record (the report reads it from there). snakemake.output: each seed's
``<eval folder>/metrics.json``, written with ``latents.nc`` and the other files by :func:`disrnn.evaluation.evaluate`.
"""

import logging
from pathlib import Path

import torch

from disrnn.evaluation import evaluate
from disrnn.logs import log_to_file


def main(smk) -> None:
    with log_to_file(smk.log[0]):
        torch.set_num_threads(smk.threads)
        sources = list(smk.input.get("posterior_from", [])) or [None] * len(smk.output)
        for info, metrics, source in zip(smk.input.fits, smk.output, sources, strict=True):
            fit_dir, out = Path(info).parent, Path(metrics).parent
            logging.info("evaluate %s on %s -> %s", fit_dir, smk.input.dataset, out)
            evaluate(
                fit_dir,
                smk.input.dataset,
                out,
                seed=int(smk.params.seed),
                session=smk.wildcards.session,
                force=True,  # Snakemake owns the folder (it removed the metrics.json it reruns)
                posterior_from=source,
            )
            if not (out / "metrics.json").is_file():
                raise RuntimeError(f"evaluate() wrote no {out / 'metrics.json'}")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
