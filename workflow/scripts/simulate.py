"""Rule simulate_session: write one simulated NWB session with known ground truth.

snakemake.params.options: the session's ``simulate`` entry, ``{preset, seed, n_trials, ...}``.
snakemake.output.nwb: the .nwb file, written by :func:`disrnn.simulate.simulate_nwb`.
"""

import logging

from disrnn.logs import log_to_file
from disrnn.simulate import simulate_nwb


def main(smk) -> None:
    with log_to_file(smk.log[0]):
        options = dict(smk.params.options)
        preset = options.pop("preset")
        seed = options.pop("seed", 0)
        logging.info("simulate preset=%s seed=%s %s -> %s", preset, seed, options, smk.output.nwb)
        simulate_nwb(preset, smk.output.nwb, seed=seed, **options)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
