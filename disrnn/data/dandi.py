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

import difflib
import fnmatch
import hashlib
import itertools
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath

from disrnn._atomic import atomic_file
from disrnn._outputs import check_output
from disrnn.logs import RedactFilter

log = logging.getLogger(__name__)
# the dandi client logs the body of a failed request, which a server may fill with the
# Authorization header it received: redact it before any handler sees it
logging.getLogger("dandi").addFilter(RedactFilter())

PUBLIC_API_URL = "https://api.dandiarchive.org/api"
"""API URL of the public DANDI archive, used when neither argument nor env var is set."""
SIDECAR_SUFFIX = ".dandi.json"
SHA256 = "dandi:sha2-256"
ETAG = "dandi:dandi-etag"
_GLOB_CHARS = "*?["
_MAX_CANDIDATES = 5000  # asset paths listed at most to suggest close matches
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


# ------------------------------------------------------------------------------- paths
def _check_asset_path(path: str, what: str = "asset path") -> None:
    """Reject paths that are empty, absolute or would leave the download folder.

    Raises:
        ValueError: ``path`` is empty, absolute (``/x``, ``C:\\x``), contains a backslash,
            or has an empty, ``.`` or ``..`` component.
    """
    if not isinstance(path, str) or not path.strip():
        raise ValueError(
            f"the {what} must be a non-empty string such as 'sub-4/file.nwb'; got {path!r}"
        )
    if path.startswith("/") or PureWindowsPath(path).drive or "\\" in path:
        raise ValueError(
            f"the {what} {path!r} is absolute or uses backslashes; give the asset's path "
            "inside the dandiset with forward slashes, e.g. 'sub-4/sub-4_ses-4.nwb'"
        )
    bad = [p for p in path.split("/") if p in ("", ".", "..")]
    if bad:
        raise ValueError(
            f"the {what} {path!r} has a {bad[0]!r} component; paths that could leave the "
            "download folder are rejected; give the asset's path inside the dandiset, "
            "e.g. 'sub-4/sub-4_ses-4.nwb'"
        )


def _is_glob(path: str) -> bool:
    return any(c in path for c in _GLOB_CHARS)


def _glob_match(pattern: str, path: str) -> bool:
    """Shell-style match per path component: ``*`` and ``?`` never match ``/``."""
    pat_parts, path_parts = pattern.split("/"), path.split("/")
    return len(pat_parts) == len(path_parts) and all(
        fnmatch.fnmatchcase(s, p) for s, p in zip(path_parts, pat_parts, strict=True)
    )


def _glob_prefix(pattern: str) -> str:
    """The literal folder prefix of ``pattern`` (up to the last '/' before a glob char)."""
    first = min(pattern.index(c) for c in _GLOB_CHARS if c in pattern)
    return pattern[: pattern.rfind("/", 0, first) + 1]


def _close_matches(word: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.5)


def _listing(items: list[str], limit: int = 20) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# ------------------------------------------------------------------------------ lookup
def _resolve_api_url(api_url: str | None) -> str:
    url = api_url or os.environ.get("DANDI_API_URL") or PUBLIC_API_URL
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(
            f"the DANDI API URL must start with http:// or https://, got {url!r}; "
            f"the public archive's is {PUBLIC_API_URL!r}"
        )
    return url.rstrip("/")


def _open_client(api_url: str, token: str | None):
    import requests
    from dandi.dandiapi import DandiAPIClient

    try:
        return DandiAPIClient(api_url=api_url, token=token)
    except RuntimeError as err:  # the client could not read the server's info
        raise ConnectionError(
            f"cannot reach a DANDI API at {api_url!r} ({err}); check --api-url / DANDI_API_URL "
            "and the network"
        ) from None
    except requests.HTTPError as err:  # authenticate() rejected the token
        status = err.response.status_code if err.response is not None else "?"
        raise PermissionError(
            f"the DANDI API at {api_url!r} rejected the token in DANDI_API_KEY (HTTP {status}); "
            "set a valid key for this instance or unset DANDI_API_KEY for public data"
        ) from None
    except requests.RequestException as err:
        raise ConnectionError(
            f"cannot reach a DANDI API at {api_url!r} ({type(err).__name__}); "
            "check --api-url / DANDI_API_URL and the network"
        ) from None


def _get_dandiset(client, dandiset: str, api_url: str):
    from dandi.exceptions import NotFoundError

    try:
        return client.get_dandiset(dandiset, lazy=False)
    except NotFoundError:
        pass
    try:
        known = [d.identifier for d in itertools.islice(client.get_dandisets(), _MAX_CANDIDATES)]
    except Exception:  # suggestions are a courtesy; never hide the real error
        known = []
    close = _close_matches(dandiset, known)
    hint = f"; close matches: {_listing(close)}" if close else ""
    raise ValueError(
        f"no dandiset {dandiset!r} at {api_url} (or it is embargoed and DANDI_API_KEY is not "
        f"set){hint}; check the identifier"
    )


def _select_version(remote, version: str | None, dandiset: str):
    """The ``dandi.dandiapi.Version`` to use; raises ValueError naming the choices."""
    if version is None:
        published = remote.most_recent_published_version
        if published is None:
            raise ValueError(
                f"dandiset {dandiset} has no published version; pass version='draft' "
                "(--version draft) to download from the draft"
            )
        return published
    if version == "draft":
        return remote.draft_version
    versions = [v for v in remote.get_versions()]
    for v in versions:
        if v.identifier == version:
            return v
    ids = [v.identifier for v in versions]
    close = _close_matches(version, ids)
    hint = f"close matches: {_listing(close)}; " if close else ""
    raise ValueError(
        f"dandiset {dandiset} has no version {version!r}; {hint}available versions: "
        f"{_listing(ids)} (or omit the version for the most recent published one)"
    )


def _candidate_paths(remote, path: str) -> list[str]:
    """Asset paths near ``path`` (same top folder, else the whole version), capped."""
    top = path.split("/", 1)[0] + "/" if "/" in path else ""
    paths = [
        a.path for a in itertools.islice(remote.get_assets_with_path_prefix(top), _MAX_CANDIDATES)
    ]
    if not paths and top:
        paths = [a.path for a in itertools.islice(remote.get_assets(), _MAX_CANDIDATES)]
    return paths


def _find_asset(remote, path: str, where: str):
    """The one ``RemoteAsset`` at ``path`` (or matching the glob ``path``)."""
    if _is_glob(path):
        matches = [
            a
            for a in remote.get_assets_with_path_prefix(_glob_prefix(path))
            if _glob_match(path, a.path)
        ]
        if len(matches) > 1:
            raise ValueError(
                f"the pattern {path!r} matches {len(matches)} assets in {where}: "
                f"{_listing(sorted(a.path for a in matches))}; give one of them as the path"
            )
    else:
        matches = [a for a in remote.get_assets_with_path_prefix(path) if a.path == path]
    if matches:
        return matches[0]
    close = _close_matches(path, _candidate_paths(remote, path))
    hint = f"; close matches: {_listing(close)}" if close else ""
    raise FileNotFoundError(
        f"no asset {'matches' if _is_glob(path) else 'at'} {path!r} in {where}{hint}"
    )


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
    if not isinstance(dandiset, str) or not re.fullmatch(r"\d{6}", dandiset):
        raise ValueError(f"a dandiset identifier is six digits such as '000207'; got {dandiset!r}")
    _check_asset_path(path)
    if version is not None and (not isinstance(version, str) or not version.strip()):
        raise ValueError(
            f"version must be None, 'draft' or a version id such as '0.220927.1850'; got {version!r}"
        )
    if not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}")
    if not (isinstance(backoff, int | float) and backoff >= 0):
        raise ValueError(f"backoff must be a non-negative number of seconds, got {backoff!r}")
    out_dir = Path(out_dir)
    url = _resolve_api_url(api_url)
    token = os.environ.get("DANDI_API_KEY") or None
    log.info(
        "looking up dandiset %s (version %s) asset %r at %s%s",
        dandiset,
        version or "most recent published",
        path,
        url,
        " with the token from DANDI_API_KEY" if token else "",
    )

    with _open_client(url, token) as client:
        remote = _get_dandiset(client, dandiset, url)
        ver = _select_version(remote, version, dandiset)
        remote = remote.for_version(ver)
        where = f"dandiset {dandiset} version {ver.identifier}"
        asset = _find_asset(remote, path, where)
        _check_asset_path(asset.path, what="asset path returned by the server")
        if getattr(asset.asset_type, "name", "") != "BLOB":
            raise ValueError(
                f"{asset.path!r} in {where} is a Zarr asset; fetch_asset downloads single files only"
            )
        digest = asset.get_raw_metadata().get("digest") or {}
        expected = {k: str(digest[k]) for k in (SHA256, ETAG) if digest.get(k)}
        if not expected:
            raise ValueError(
                f"the metadata of {asset.path!r} in {where} has no {SHA256} or {ETAG} digest "
                f"(it has {sorted(digest)}); the download cannot be verified"
            )
        dest = out_dir / PurePosixPath(asset.path)
        if not dest.resolve().is_relative_to(out_dir.resolve()):
            raise ValueError(
                f"the asset path {asset.path!r} would leave the download folder {str(out_dir)!r}"
            )
        record = {
            "dandiset": dandiset,
            "version": ver.identifier,
            "asset_path": asset.path,
            "api_url": url,
            "sha256": None,
            "size": asset.size,
        }
        want_etag = SHA256 not in expected

        if dest.is_file() and dest.stat().st_size == asset.size:
            sha256, etag, _ = _hash_chunks(_read_file(dest), asset.size, want_etag)
            if _digest_mismatch(expected, sha256, etag) is None:
                log.info("%s is already downloaded with the right digest; skipping", dest)
                _write_sidecar(dest, {**record, "sha256": sha256})
                return dest
        if dest.exists():  # not the asset: replaced only when an earlier download
            check_output(dest, "download", force=force)
            log.warning("%s is not the %d-byte asset; downloading it again", dest, asset.size)

        downloader = asset.get_download_file_iter()
        log.info("downloading %s (%d bytes) from %s to %s", asset.path, asset.size, where, dest)
        with atomic_file(dest) as tmp:
            for attempt in itertools.count():
                try:
                    sha256, etag = _download_once(
                        downloader, tmp, asset.size, want_etag, asset.path
                    )
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
        log.info("verified %s (sha256 %s)", dest, sha256)
        _write_sidecar(dest, {**record, "sha256": sha256})
    return dest
