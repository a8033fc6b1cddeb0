"""Find one asset of a DANDI dandiset: the API, the dandiset, its version, the asset path.

Every miss raises an error naming what was asked and, where the archive has something
close (a dandiset id, a version, an asset path), the close matches. Asset paths, the
user's and the server's alike, are checked never to leave the download folder.
"""

from __future__ import annotations

import difflib
import fnmatch
import itertools
import os
from collections.abc import Iterable
from pathlib import PureWindowsPath

PUBLIC_API_URL = "https://api.dandiarchive.org/api"
"""API URL of the public DANDI archive, used when neither argument nor env var is set."""
_GLOB_CHARS = "*?["
_MAX_CANDIDATES = 5000  # asset paths listed at most to suggest close matches


# ------------------------------------------------------------------------------- paths
def check_asset_path(path: str, what: str = "asset path") -> None:
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
def resolve_api_url(api_url: str | None) -> str:
    url = api_url or os.environ.get("DANDI_API_URL") or PUBLIC_API_URL
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(
            f"the DANDI API URL must start with http:// or https://, got {url!r}; "
            f"the public archive's is {PUBLIC_API_URL!r}"
        )
    return url.rstrip("/")


def open_client(api_url: str, token: str | None):
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


def lookup_asset(client, dandiset: str, path: str, version: str | None, url: str):
    """(the single-file ``RemoteAsset`` at ``path``, its ``Version``, a description of where)."""
    remote = _get_dandiset(client, dandiset, url)
    ver = _select_version(remote, version, dandiset)
    remote = remote.for_version(ver)
    where = f"dandiset {dandiset} version {ver.identifier}"
    asset = _find_asset(remote, path, where)
    check_asset_path(asset.path, what="asset path returned by the server")
    if getattr(asset.asset_type, "name", "") != "BLOB":
        raise ValueError(
            f"{asset.path!r} in {where} is a Zarr asset; fetch_asset downloads single files only"
        )
    return asset, ver, where
