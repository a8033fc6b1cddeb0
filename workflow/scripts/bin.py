"""Rule bin_session: bin one NWB session into the (trial, time, unit) dataset.

snakemake.input.nwb: the session's NWB file.
snakemake.params.options: keyword arguments of :class:`disrnn.data.binning.BinConfig`
(the config's ``binning``/``split``/``heldout`` defaults with the session's overrides).
snakemake.output.dataset: the NetCDF file, written atomically by
:func:`disrnn.data.io.save_dataset`.
"""

import logging

from disrnn.data.binning import BinConfig, bin_session
from disrnn.data.io import save_dataset
from disrnn.logs import log_to_file


def main(smk) -> None:
    with log_to_file(smk.log[0]):
        options = dict(smk.params.options)
        for key in ("window", "split", "behavior"):
            if key in options:
                options[key] = tuple(options[key])
        logging.info("bin %s with %s", smk.input.nwb, options)
        ds = bin_session(smk.input.nwb, BinConfig(**options))
        logging.info("dataset sizes %s", dict(ds.sizes))
        save_dataset(ds, smk.output.dataset)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
