"""Download one asset of a DANDI dandiset, verified against its published digest.

:func:`fetch_asset` finds the asset with ``dandi.dandiapi.DandiAPIClient`` (so a mirror or
another DANDI instance works by changing the API URL), streams its bytes into a temporary
file beside the destination, checks them against the digest in the asset's metadata and
only then renames the file to ``out_dir/<asset path>``. Beside it, ``<file>.dandi.json``
records where the file came from::

    {"dandiset": "000207", "version": "0.220927.1850",
     "asset_path": "sub-4/sub-4_ses-4_ecephys+image.nwb",
     "api_url": "https://api.dandiarchive.org/api", "sha256": "1f6d...", "size": 2070173}

The API token, when one is needed (embargoed data), is read from the ``DANDI_API_KEY``
environment variable only; it is handed to the client and never logged, printed or written
(records of the client's logger pass :func:`disrnn.logs.redact`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath

from disrnn._atomic import atomic_file
from disrnn._outputs import check_output
from disrnn.data.dandi_lookup import check_asset_path, lookup_asset, open_client, resolve_api_url
from disrnn.logs import RedactFilter

log = logging.getLogger(__name__)
# the dandi client logs the body of a failed request, which a server may fill with the
# Authorization header it received: redact it before any handler sees it
logging.getLogger("dandi").addFilter(RedactFilter())

SIDECAR_SUFFIX = ".dandi.json"
SHA256 = "dandi:sha2-256"
ETAG = "dandi:dandi-etag"
_CHUNK = 1024 * 1024
_sleep: Callable[[float], None] = time.sleep  # replaced in tests to record the backoff


class DigestMismatchError(ValueError):
    """The downloaded bytes do not match the digest in the asset's metadata."""


class _Transient(Exception):
    """A download failure worth retrying (HTTP 5xx, connection reset, truncated body)."""


# ----------------------------------------------------------------------------- digests
class DandiEtag:
    """Streaming DANDI etag: md5 of the concatenated md5 digests of the upload parts, ``-N``.

    Parts are 64 MiB, except that files that would need 10,000 parts or more use
    ``ceil(size / 10000)`` bytes per part (the rule of the archive's S3 multipart uploads).

    Args:
        size: total file size in bytes (the part boundaries depend on it).
    """

    DEFAULT_PART = 64 * 1024 * 1024
    MAX_PARTS = 10_000

    def __init__(self, size: int) -> None:
        part = self.DEFAULT_PART
        if math.ceil(size / part) >= self.MAX_PARTS:
            part = math.ceil(size / self.MAX_PARTS)
        self._part_size = part
        self._digests: list[bytes] = []
        self._current = hashlib.md5()
        self._in_part = 0

    def update(self, data: bytes) -> None:
        view = memoryview(data)
        while len(view):
            take = min(len(view), self._part_size - self._in_part)
            self._current.update(view[:take])
            self._in_part += take
            view = view[take:]
            if self._in_part == self._part_size:
                self._digests.append(self._current.digest())
                self._current, self._in_part = hashlib.md5(), 0

    def hexdigest(self) -> str:
        digests = list(self._digests)
        if self._in_part:
            digests.append(self._current.digest())
        return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def _hash_chunks(
    chunks: Iterable[bytes], size: int, want_etag: bool
) -> tuple[str, str | None, int]:
    """sha256 hex digest, DANDI etag (or None) and byte count of a stream of chunks."""
    sha = hashlib.sha256()
    etag = DandiEtag(size) if want_etag else None
    n = 0
    for chunk in chunks:
        sha.update(chunk)
        if etag is not None:
            etag.update(chunk)
        n += len(chunk)
    return sha.hexdigest(), (etag.hexdigest() if etag else None), n


def _read_file(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


def _digest_mismatch(expected: dict[str, str], sha256: str, etag: str | None) -> str | None:
    """A description of the mismatch between ``expected`` and the computed digests, or None."""
    if SHA256 in expected:
        if sha256 != expected[SHA256].lower():
            return f"sha256 {sha256} != expected {expected[SHA256]}"
        return None
    if etag != expected[ETAG]:
        return f"dandi-etag {etag} != expected {expected[ETAG]}"
    return None


# ---------------------------------------------------------------------------- download
def _download_once(
    downloader, tmp: Path, size: int, want_etag: bool, label: str
) -> tuple[str, str | None]:
    """Stream the asset into ``tmp`` once; return (sha256, etag or None).

    Raises:
        _Transient: HTTP 5xx, a connection error or a body of the wrong length.
        PermissionError / FileNotFoundError / OSError: other HTTP errors (4xx).
    """
    import requests
    from tqdm.auto import tqdm

    def chunks(f, bar) -> Iterator[bytes]:
        for chunk in downloader(0):
            f.write(chunk)
            bar.update(len(chunk))
            yield chunk

    try:
        with (
            open(tmp, "wb") as f,
            tqdm(
                total=size, unit="B", unit_scale=True, desc=label, leave=False, disable=None
            ) as bar,
        ):
            sha256, etag, n = _hash_chunks(chunks(f, bar), size, want_etag)
    except requests.HTTPError as err:
        status = err.response.status_code if err.response is not None else 0
        if status >= 500 or status == 429:
            raise _Transient(f"HTTP {status}") from None
        if status in (401, 403):
            raise PermissionError(
                f"the server refused the download of {label} (HTTP {status}); embargoed data "
                "needs a valid token in DANDI_API_KEY"
            ) from None
        if status == 404:
            raise FileNotFoundError(f"the server has no content for {label} (HTTP 404)") from None
        raise OSError(f"downloading {label} failed with HTTP {status}") from None
    except (
        requests.ConnectionError,
        requests.Timeout,
        requests.exceptions.ChunkedEncodingError,
    ) as err:
        raise _Transient(type(err).__name__ + ": " + str(err).split("\n")[0][:200]) from None
    except ConnectionError as err:  # a socket reset surfacing outside requests
        raise _Transient(type(err).__name__) from None
    if n != size:
        raise _Transient(f"received {n} of {size} bytes (truncated body)")
    return sha256, etag


def _write_sidecar(dest: Path, record: dict) -> Path:
    sidecar = dest.with_name(dest.name + SIDECAR_SUFFIX)
    with atomic_file(sidecar) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    return sidecar


def fetch_asset(
    dandiset: str,
    path: str,
    out_dir: str | os.PathLike,
    version: str | None = None,
    api_url: str | None = None,
    *,
    max_retries: int = 4,
    backoff: float = 1.0,
    force: bool = False,
) -> Path:
    """Download one asset of a dandiset to ``out_dir/<asset path>``, verified by its digest.

    The bytes are streamed into a hidden ``.part`` file in the destination folder, hashed
    while they arrive and renamed into place only when they match the asset's digest in
    its metadata (``dandi:sha2-256``, or the ``dandi:dandi-etag`` when that is all the
    metadata has). A file already at the destination with the right digest is kept and not
    downloaded again. ``<file>.dandi.json`` beside it records ``{dandiset, version,
    asset_path, api_url, sha256, size}``.

    Transient failures of the byte download (HTTP 5xx or 429, connection errors, a body
    shorter than the asset) are retried up to ``max_retries`` times, waiting
    ``backoff * 2**k`` seconds before retry ``k = 0, 1, ...``; other HTTP errors are not
    retried. (API calls that look the asset up are retried by the dandi client itself.)

    Args:
        dandiset: six-digit dandiset identifier, e.g. ``"000207"``.
        path: asset path inside the dandiset, e.g. ``"sub-4/sub-4_ses-4_ecephys+image.nwb"``,
            or a glob (``*``, ``?``, ``[...]``; matched per path component, so ``*`` does
            not cross ``/``) that must match exactly one asset.
        out_dir: download folder; the asset path is kept below it.
        version: ``None`` for the most recent published version, ``"draft"``, or a
            published version id such as ``"0.220927.1850"``.
        api_url: DANDI API URL; default env ``DANDI_API_URL``, else the public archive's
            (``https://api.dandiarchive.org/api``).
        max_retries: retries of a failed download, >= 0.
        backoff: base of the exponential wait in seconds, >= 0.
        force: replace a file at the destination that is neither the asset nor an earlier
            download (one without a ``.dandi.json`` sidecar).

    Returns:
        The downloaded file's path, ``Path(out_dir) / <asset path>``.

    Raises:
        ValueError: a malformed dandiset id, an asset path that is absolute or contains
            ``..`` (checked before any request), an unknown dandiset or version (with close
            matches), no published version when ``version`` is None, a glob matching several
            assets (listed), a Zarr asset, metadata without a usable digest, or bad
            ``max_retries``/``backoff``. :class:`DigestMismatchError` (a ValueError) when the
            downloaded bytes do not match the digest; nothing is left behind.
        FileNotFoundError: no asset at ``path`` (with close matches).
        FileExistsError: a different file (without sidecar) is at the destination.
        PermissionError: the server rejected the token or refused the download (401/403).
        ConnectionError: the API cannot be reached, or the download still fails after
            ``max_retries`` retries.
    """
    _check_arguments(dandiset, path, version, max_retries, backoff)
    out_dir = Path(out_dir)
    url = resolve_api_url(api_url)
    token = os.environ.get("DANDI_API_KEY") or None
    log.info(
        "looking up dandiset %s (version %s) asset %r at %s%s",
        dandiset,
        version or "most recent published",
        path,
        url,
        " with the token from DANDI_API_KEY" if token else "",
    )

    with open_client(url, token) as client:
        asset, ver, where = lookup_asset(client, dandiset, path, version, url)
        expected = _expected_digests(asset, where)
        dest = _destination(out_dir, asset.path)
        sha256 = _verified_copy(dest, asset.size, expected, force)
        if sha256 is None:
            sha256 = _download_verified(asset, dest, expected, url, where, max_retries, backoff)
            log.info("verified %s (sha256 %s)", dest, sha256)
        record = {"dandiset": dandiset, "version": ver.identifier, "asset_path": asset.path}
        _write_sidecar(dest, {**record, "api_url": url, "sha256": sha256, "size": asset.size})
    return dest


def _check_arguments(
    dandiset: str, path: str, version: str | None, max_retries: int, backoff: float
) -> None:
    """Reject malformed arguments of :func:`fetch_asset` before any request (ValueError)."""
    if not isinstance(dandiset, str) or not re.fullmatch(r"\d{6}", dandiset):
        raise ValueError(f"a dandiset identifier is six digits such as '000207'; got {dandiset!r}")
    check_asset_path(path)
    if version is not None and (not isinstance(version, str) or not version.strip()):
        raise ValueError(
            f"version must be None, 'draft' or a version id such as '0.220927.1850'; got {version!r}"
        )
    if not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}")
    if not (isinstance(backoff, int | float) and backoff >= 0):
        raise ValueError(f"backoff must be a non-negative number of seconds, got {backoff!r}")


def _expected_digests(asset, where: str) -> dict[str, str]:
    """The asset's sha256 and/or etag from its metadata; ValueError when it has neither."""
    digest = asset.get_raw_metadata().get("digest") or {}
    expected = {k: str(digest[k]) for k in (SHA256, ETAG) if digest.get(k)}
    if not expected:
        raise ValueError(
            f"the metadata of {asset.path!r} in {where} has no {SHA256} or {ETAG} digest "
            f"(it has {sorted(digest)}); the download cannot be verified"
        )
    return expected


def _destination(out_dir: Path, asset_path: str) -> Path:
    """``out_dir / asset_path``; ValueError when it would lie outside ``out_dir``."""
    dest = out_dir / PurePosixPath(asset_path)
    if not dest.resolve().is_relative_to(out_dir.resolve()):
        raise ValueError(
            f"the asset path {asset_path!r} would leave the download folder {str(out_dir)!r}"
        )
    return dest


def _verified_copy(dest: Path, size: int, expected: dict[str, str], force: bool) -> str | None:
    """The sha256 of the file at ``dest`` when it is the asset already, else None.

    Raises:
        FileExistsError: another file is at ``dest`` that is not an earlier download
        (:func:`disrnn._outputs.check_output`) and ``force`` is not set.
    """
    if dest.is_file() and dest.stat().st_size == size:
        sha256, etag, _ = _hash_chunks(_read_file(dest), size, SHA256 not in expected)
        if _digest_mismatch(expected, sha256, etag) is None:
            log.info("%s is already downloaded with the right digest; skipping", dest)
            return sha256
    if dest.exists():  # not the asset: replaced only when an earlier download
        check_output(dest, "download", force=force)
        log.warning("%s is not the %d-byte asset; downloading it again", dest, size)
    return None


def _download_verified(
    asset,
    dest: Path,
    expected: dict[str, str],
    url: str,
    where: str,
    max_retries: int,
    backoff: float,
) -> str:
    """Download ``asset`` to ``dest`` (retrying transient failures); return its sha256.

    Raises:
        ConnectionError: still failing after ``max_retries`` retries.
        DigestMismatchError: the bytes do not match ``expected``; nothing is left behind.
    """
    downloader = asset.get_download_file_iter()
    want_etag = SHA256 not in expected
    log.info("downloading %s (%d bytes) from %s to %s", asset.path, asset.size, where, dest)
    with atomic_file(dest) as tmp:
        for attempt in itertools.count():
            try:
                sha256, etag = _download_once(downloader, tmp, asset.size, want_etag, asset.path)
                break
            except _Transient as err:
                if attempt >= max_retries:
                    raise ConnectionError(
                        f"downloading {asset.path!r} from {url} failed after {attempt + 1} "
                        f"attempt(s); last error: {err}; try again later or raise max_retries"
                    ) from None
                delay = backoff * 2**attempt
                log.warning(
                    "download of %s failed (%s); retry %d of %d in %.3g s",
                    asset.path,
                    err,
                    attempt + 1,
                    max_retries,
                    delay,
                )
                _sleep(delay)
        problem = _digest_mismatch(expected, sha256, etag)
        if problem is not None:
            raise DigestMismatchError(
                f"the bytes downloaded for {asset.path!r} from {where} at {url} do not match "
                f"the asset's metadata ({problem}); nothing was written; the server's copy or "
                "its metadata is corrupt, or a proxy altered the download"
            )
    return sha256
