"""Save and load binned datasets as compressed NetCDF (h5netcdf engine)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import xarray as xr

from disrnn._atomic import atomic_file

#: the dims of every (trial, time, unit) array of a dataset, in this order (docs/design.md)
DIMS = ("trial", "time", "unit")
#: the ``kind`` attr of a behavior variable (trial, time, <name>_dim), e.g. a hand velocity
BEHAVIOR_KIND = "behavior"


def behavior_variables(ds: xr.Dataset) -> list[str]:
    """Names of the dataset's behavior variables: data variables with attrs kind =
    ``BEHAVIOR_KIND``, in the dataset's order."""
    return [n for n, v in ds.data_vars.items() if v.attrs.get("kind") == BEHAVIOR_KIND]


def save_dataset(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to ``path`` (NetCDF4 via h5netcdf, zlib-compressed), atomically.

    Numeric data variables are compressed; string coordinates are stored as
    variable-length strings. Attributes that NetCDF cannot hold (``None``, booleans,
    nested dicts) must have been converted by the caller (see :func:`clean_attrs`).

    Returns:
        The written path.
    """
    path = Path(path)
    encoding = {}
    for name, var in {**ds.data_vars, **ds.coords}.items():
        if np.issubdtype(var.dtype, np.number) and var.ndim > 0:
            encoding[name] = {"compression": "gzip", "compression_opts": 4}
    with atomic_file(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding, invalid_netcdf=False)
    return path


def load_dataset(path: str | os.PathLike) -> xr.Dataset:
    """Load a dataset written by :func:`save_dataset` fully into memory.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no dataset at {str(path)!r}; run `disrnn bin` to create it")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def nwb_changed(dataset: str | os.PathLike, nwb: str | os.PathLike) -> str | None:
    """Why the saved ``dataset`` no longer matches the NWB file ``nwb`` it was binned
    from: its attrs ``sha256`` (the file's hash at binning) differs from the file's now.

    Returns:
        A message naming both hashes, or None when they match, or when the dataset, the
        file or the recorded hash is absent (nothing to compare).
    """
    dataset, nwb = Path(dataset), Path(nwb)
    if not (dataset.exists() and nwb.exists()):
        return None
    with xr.open_dataset(dataset, engine="h5netcdf") as ds:
        recorded = str(ds.attrs.get("sha256") or "")
    now = file_sha256(nwb) if recorded else ""
    if recorded == now:
        return None
    return (
        f"{dataset} was binned from another version of {nwb} (sha256 {recorded[:12]}... "
        f"then, {now[:12]}... now): it is stale"
    )


def clean_attrs(attrs: dict) -> dict:
    """Return a copy of ``attrs`` that NetCDF can store.

    ``None`` becomes ``""``, booleans become ints, dicts and lists of mixed values become
    JSON strings, numpy scalars become Python scalars.
    """
    import json

    out = {}
    for key, value in attrs.items():
        if value is None:
            out[key] = ""
        elif isinstance(value, bool | np.bool_):
            out[key] = int(value)
        elif isinstance(value, dict):
            out[key] = json.dumps(value, default=_json_default)
        elif isinstance(value, list | tuple):
            arr = np.asarray(value)
            if arr.dtype.kind in "iuf" and arr.ndim == 1:
                out[key] = arr
            else:
                out[key] = json.dumps(list(value), default=_json_default)
        elif isinstance(value, np.generic):
            out[key] = value.item()
        else:
            out[key] = value
    return out


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)
