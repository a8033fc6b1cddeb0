"""Rule fetch_dandi: download one NWB asset from a DANDI archive, digest-verified.

snakemake.params.source: ``{dandiset, path, version, api_url}`` (``version`` None = the most
recent published version; ``api_url`` None = env ``DANDI_API_URL`` or the public archive).
snakemake.output.nwb: ``<download folder>/<asset path>``, written by
:func:`disrnn.data.dandi.fetch_asset` with its ``.dandi.json`` provenance sidecar.
The API token is read by the package from ``DANDI_API_KEY`` only; it is never logged here.
"""

from pathlib import Path

from disrnn.data.dandi import fetch_asset
from disrnn.logs import log_to_file


def main(smk) -> None:
    with log_to_file(smk.log[0]):
        source = dict(smk.params.source)
        nwb = Path(smk.output.nwb)
        out_dir = Path(str(nwb)[: -len(source["path"])])
        got = fetch_asset(
            source["dandiset"],
            source["path"],
            out_dir,
            version=source.get("version"),
            api_url=source.get("api_url"),
            force=True,  # Snakemake owns the download path
        )
        if Path(got).resolve() != nwb.resolve():
            raise RuntimeError(f"fetch_asset wrote {got}, expected {nwb}")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
