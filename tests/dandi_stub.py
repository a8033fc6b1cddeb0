"""A stand-in DANDI archive API on 127.0.0.1, for offline tests of DANDI downloads.

It answers the endpoints that ``dandi.dandiapi.DandiAPIClient`` calls to find a dandiset,
its versions and assets and to download an asset, so the real client runs unchanged with
only its API URL pointed here. It serves local files (by default the real NWB file in
``<repo>/../shared/data/``) as the assets of one dandiset (default ``000207``) with one or
more published versions and ``draft``.

    with DandiStub() as stub:                       # or DandiStub(files={"a/b.nwb": path})
        fetch_asset("000207", ASSET_PATH, tmp, api_url=stub.api_url)

Endpoints (``{api}`` = ``stub.api_url`` = ``http://127.0.0.1:<port>/api``):

    GET /server-info, {api}/info/                     server info (the client checks it
                                                      when it does not know the URL)
    GET {api}/auth/token                              200 when the token matches, else 401
    GET {api}/dandisets/                              paginated dandiset list
    GET {api}/dandisets/{id}/                         dandiset (most recent published
                                                      version and draft)
    GET {api}/dandisets/{id}/versions/                paginated versions
    GET {api}/dandisets/{id}/versions/{v}/info/       one version
    GET {api}/dandisets/{id}/versions/{v}/assets/     paginated assets; ?path= (prefix),
                                                      ?glob= (fnmatch), ?page=, ?page_size=
    GET {api}/dandisets/{id}/versions/{v}/assets/{asset_id}/        asset metadata
    GET {api}/dandisets/{id}/versions/{v}/assets/{asset_id}/info/   asset + metadata
    GET {api}/assets/{asset_id}/, .../info/           the same without the dandiset
    GET|HEAD {api}/assets/{asset_id}/download/ and    302 redirect to /blobs/{blob_id}
        {api}/dandisets/{id}/versions/{v}/assets/{asset_id}/download/
    GET|HEAD /blobs/{blob_id}                         the bytes (honours ``Range``)

Anything else is a JSON 404, as on the real archive.

Fault injection (plain attributes, may be changed while the server runs):

- ``fail_downloads = N``: the next N download requests get HTTP ``fail_status`` (500).
- ``truncate_downloads = N``: the next N blob responses announce the full
  ``Content-Length`` but send only ``truncate_fraction`` of the bytes, then close
  (``truncate_announce_length = False``: no ``Content-Length``, so the client sees a
  short body that ends cleanly and only a size check can notice).
- ``wrong_digest = True``: asset metadata carries digests of other bytes.
- ``digest_types``: which digests the metadata carries (``dandi:sha2-256``,
  ``dandi:dandi-etag``); e.g. ``("dandi:dandi-etag",)`` for an etag-only asset.
- ``token``: when set, ``/auth/token`` accepts only ``Authorization: token <token>``.
- ``echo_authorization = True``: the 401 of ``/auth/token`` repeats the ``Authorization``
  header it received in its body (as a careless server might; the client logs the body).

``stub.requests`` records ``(method, path, query)`` of every request, and
``stub.authorizations`` every ``Authorization`` header value received.

In pytest, use :func:`quiet_dandi_client` (monkeypatch) so that the client neither phones
home for its version check nor retries a failing API call twelve times with backoff.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_NWB = REPO_ROOT.parent / "shared" / "data" / "sub-4_ses-4_ecephys+image.nwb"
DANDISET = "000207"
ASSET_PATH = "sub-4/sub-4_ses-4_ecephys+image.nwb"
PUBLISHED_VERSION = "0.220927.1850"
TIMESTAMP = "2022-09-27T18:50:00.000000Z"
_PART = 64 * 1024 * 1024  # DANDI etag part size for files below 64 MiB * 10,000


def dandi_etag(data: bytes) -> str:
    """DANDI etag of ``data``: md5 of the concatenated md5 digests of 64 MiB parts, ``-N``.

    Only the default part size is implemented (files under 625 GiB), enough for test files.
    """
    parts = [data[i : i + _PART] for i in range(0, len(data), _PART)] or []
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f"{hashlib.md5(digests).hexdigest()}-{len(parts)}"


def quiet_dandi_client(monkeypatch) -> None:
    """Make ``DandiAPIClient`` test-friendly for the duration of one test (pytest monkeypatch).

    - ``DANDI_NO_ET=1``: no version check against the internet.
    - ``dandi.dandiapi.REQUEST_RETRIES = 1``: the client does not retry an API call that
      got a 5xx or a connection error (its default is 12 tries with exponential waits,
      about a minute); our own download retries are unaffected.
    - ``DANDI_API_KEY`` and ``DANDI_API_URL`` are removed from the environment.
    """
    import dandi.dandiapi

    monkeypatch.setenv("DANDI_NO_ET", "1")
    monkeypatch.delenv("DANDI_API_KEY", raising=False)
    monkeypatch.delenv("DANDI_API_URL", raising=False)
    monkeypatch.setattr(dandi.dandiapi, "REQUEST_RETRIES", 1)


class _Asset:
    def __init__(self, dandiset: str, path: str, data: bytes) -> None:
        self.path = path
        self.data = data
        self.size = len(data)
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.etag = dandi_etag(data)
        self.asset_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"dandi-stub:{dandiset}:{path}"))
        self.blob_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"dandi-stub-blob:{self.sha256}"))

    def listing(self) -> dict:
        return {
            "asset_id": self.asset_id,
            "blob": self.blob_id,
            "zarr": None,
            "path": self.path,
            "size": self.size,
            "created": TIMESTAMP,
            "modified": TIMESTAMP,
        }


class DandiStub:
    """A stand-in DANDI API server on an ephemeral port of 127.0.0.1 (context manager).

    Args:
        files: asset path -> local file path or bytes. Default: the real NWB file in
            ``../shared/data`` as ``sub-4/sub-4_ses-4_ecephys+image.nwb``.
        dandiset: the one dandiset identifier served.
        published_versions: published version ids, oldest first; ``()`` for a dandiset
            that only has a draft. Every version (and ``draft``) holds the same files.
        token: the API token ``/auth/token`` accepts; None accepts any.
        page_size: default page size of paginated listings.

    Raises:
        FileNotFoundError: a file in ``files`` does not exist (e.g. ``../shared/data``
            is absent in a fresh clone).
    """

    def __init__(
        self,
        files: Mapping[str, str | os.PathLike | bytes] | None = None,
        *,
        dandiset: str = DANDISET,
        published_versions: tuple[str, ...] = (PUBLISHED_VERSION,),
        token: str | None = None,
        page_size: int = 100,
    ) -> None:
        if files is None:
            files = {ASSET_PATH: SHARED_NWB}
        self.dandiset = dandiset
        self.published_versions = tuple(published_versions)
        self.token = token
        self.page_size = page_size
        self.assets: dict[str, _Asset] = {}
        for path, source in files.items():
            if isinstance(source, bytes):
                data = source
            else:
                source = Path(source)
                if not source.is_file():
                    raise FileNotFoundError(
                        f"DandiStub: no file {str(source)!r} to serve as asset {path!r}"
                    )
                data = source.read_bytes()
            self.assets[path] = _Asset(dandiset, path, data)
        # fault injection
        self.fail_downloads = 0
        self.fail_status = 500
        self.truncate_downloads = 0
        self.truncate_fraction = 0.5
        self.truncate_announce_length = True
        self.wrong_digest = False
        self.echo_authorization = False
        self.digest_types: tuple[str, ...] = ("dandi:dandi-etag", "dandi:sha2-256")
        # records
        self.requests: list[tuple[str, str, str]] = []
        self.authorizations: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> DandiStub:
        """Start serving in a daemon thread; returns self."""
        handler = type("_BoundHandler", (_Handler,), {"stub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the server and close its socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> DandiStub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (the server must be started)."""
        if self._server is None:
            raise RuntimeError("DandiStub is not running; use it as a context manager")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        """The API URL to give the client: ``http://127.0.0.1:<port>/api``."""
        return f"{self.base_url}/api"

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point a subprocess (e.g. Snakemake) at this stub."""
        return {"DANDI_API_URL": self.api_url, "DANDI_NO_ET": "1"}

    def download_count(self) -> int:
        """How many download requests (``.../download/``) the server has received."""
        return sum(1 for _, path, _ in self.requests if path.endswith("/download/"))

    # ------------------------------------------------------------------ documents
    def versions(self) -> list[str]:
        return [*self.published_versions, "draft"]

    def version_doc(self, version: str) -> dict:
        return {
            "version": version,
            "name": f"Stand-in dandiset {self.dandiset}",
            "asset_count": len(self.assets),
            "size": sum(a.size for a in self.assets.values()),
            "created": TIMESTAMP,
            "modified": TIMESTAMP,
            "status": "Valid" if version == "draft" else "Published",
        }

    def dandiset_doc(self) -> dict:
        latest = self.published_versions[-1] if self.published_versions else None
        return {
            "identifier": self.dandiset,
            "created": TIMESTAMP,
            "modified": TIMESTAMP,
            "contact_person": "Stub, Test",
            "embargo_status": "OPEN",
            "most_recent_published_version": self.version_doc(latest) if latest else None,
            "draft_version": self.version_doc("draft"),
        }

    def asset_metadata(self, asset: _Asset, version: str) -> dict:
        sha256, etag = asset.sha256, asset.etag
        if self.wrong_digest:
            sha256 = hashlib.sha256(b"not the bytes served").hexdigest()
            etag = dandi_etag(b"not the bytes served")
        digests = {"dandi:sha2-256": sha256, "dandi:dandi-etag": etag}
        return {
            "id": f"dandiasset:{asset.asset_id}",
            "identifier": asset.asset_id,
            "schemaKey": "Asset",
            "path": asset.path,
            "contentSize": asset.size,
            "encodingFormat": "application/x-nwb",
            "digest": {k: v for k, v in digests.items() if k in self.digest_types},
            "contentUrl": [
                f"{self.api_url}/assets/{asset.asset_id}/download/",
                f"{self.base_url}/blobs/{asset.blob_id}",
            ],
            "dateModified": TIMESTAMP,
            "blobDateModified": TIMESTAMP,
            "isPartOf": f"DANDI:{self.dandiset}/{version}",
        }


class _Handler(BaseHTTPRequestHandler):
    stub: DandiStub  # set on the bound subclass
    server_version = "DandiStub/1.0"

    def log_message(self, format, *args) -> None:  # noqa: A002 - silence stderr logging
        pass

    # ------------------------------------------------------------------ responses
    def _json(self, status: int, doc) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _not_found(self) -> None:
        self._json(404, {"detail": "Not found."})

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _paginate(self, items: list, query: dict[str, list[str]]) -> None:
        stub = self.stub
        try:
            page = int(query.get("page", ["1"])[0])
            size = int(query.get("page_size", [str(stub.page_size)])[0])
        except ValueError:
            self._json(400, {"detail": "bad page or page_size"})
            return
        start = (page - 1) * size
        results = items[start : start + size]
        nxt = None
        if start + size < len(items):
            q = {k: v[0] for k, v in query.items()}
            q["page"] = str(page + 1)
            nxt = f"{stub.base_url}{urlsplit(self.path).path}?{urlencode(q)}"
        self._json(200, {"count": len(items), "next": nxt, "previous": None, "results": results})

    # ------------------------------------------------------------------ dispatch
    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        stub = self.stub
        split = urlsplit(self.path)
        query = parse_qs(split.query)
        with stub._lock:
            stub.requests.append((self.command, split.path, split.query))
            auth = self.headers.get("Authorization")
            if auth:
                stub.authorizations.append(auth)
        parts = [p for p in split.path.split("/") if p]
        if parts == ["server-info"] or parts == ["api", "info"]:
            self._server_info()
        elif parts[:1] == ["blobs"] and len(parts) == 2:
            self._blob(parts[1])
        elif parts[:1] == ["api"]:
            self._api(parts[1:], query)
        else:
            self._not_found()

    def _server_info(self) -> None:
        stub = self.stub
        self._json(
            200,
            {
                "version": "1.0.0",
                "schema_version": "0.6.8",
                "schema_url": "https://example.invalid/schema",
                "services": {"api": {"url": stub.api_url}, "webui": {"url": stub.base_url}},
                "cli-minimal-version": "0.0.0",
                "cli-bad-versions": [],
            },
        )

    def _api(self, parts: list[str], query: dict[str, list[str]]) -> None:
        stub = self.stub
        if parts == ["auth", "token"]:
            auth = self.headers.get("Authorization", "")
            if stub.token is None or auth == f"token {stub.token}":
                self._json(200, {"detail": "ok"})
            elif stub.echo_authorization:
                self._json(401, {"detail": f"Invalid token: Authorization: {auth}"})
            else:
                self._json(401, {"detail": "Invalid token."})
            return
        if parts == ["dandisets"]:
            self._paginate([stub.dandiset_doc()], query)
            return
        if parts[:1] == ["assets"] and len(parts) >= 2:
            asset = self._asset_by_id(parts[1])
            if asset is None:
                return self._not_found()
            return self._asset_endpoint(asset, "draft", parts[2:])
        if parts[:1] != ["dandisets"] or len(parts) < 2 or parts[1] != stub.dandiset:
            return self._not_found()
        rest = parts[2:]
        if rest == []:
            return self._json(200, stub.dandiset_doc())
        if rest == ["versions"]:
            return self._paginate([stub.version_doc(v) for v in stub.versions()], query)
        if rest[0] != "versions" or len(rest) < 2 or rest[1] not in stub.versions():
            return self._not_found()
        version, rest = rest[1], rest[2:]
        if rest == [] or rest == ["info"]:
            doc = stub.version_doc(version)
            if rest == ["info"]:
                doc = {**doc, "asset_validation_errors": [], "version_validation_errors": []}
            return self._json(200, doc)
        if rest == ["assets"]:
            assets = sorted(stub.assets.values(), key=lambda a: a.path)
            if "path" in query:
                prefix = query["path"][0]
                assets = [a for a in assets if a.path.startswith(prefix)]
            if "glob" in query:
                pattern = query["glob"][0]
                assets = [a for a in assets if fnmatch.fnmatchcase(a.path, pattern)]
            return self._paginate([a.listing() for a in assets], query)
        if rest[0] == "assets" and len(rest) >= 2:
            asset = self._asset_by_id(rest[1])
            if asset is None:
                return self._not_found()
            return self._asset_endpoint(asset, version, rest[2:])
        self._not_found()

    def _asset_by_id(self, asset_id: str) -> _Asset | None:
        return next((a for a in self.stub.assets.values() if a.asset_id == asset_id), None)

    def _asset_endpoint(self, asset: _Asset, version: str, rest: list[str]) -> None:
        stub = self.stub
        if rest == []:
            return self._json(200, stub.asset_metadata(asset, version))
        if rest == ["info"]:
            return self._json(
                200, {**asset.listing(), "metadata": stub.asset_metadata(asset, version)}
            )
        if rest == ["download"]:
            with stub._lock:
                fail = stub.fail_downloads > 0
                if fail:
                    stub.fail_downloads -= 1
            if fail:
                return self._json(stub.fail_status, {"detail": "Injected server error."})
            return self._redirect(f"{stub.base_url}/blobs/{asset.blob_id}")
        self._not_found()

    def _blob(self, blob_id: str) -> None:
        stub = self.stub
        asset = next((a for a in stub.assets.values() if a.blob_id == blob_id), None)
        if asset is None:
            return self._not_found()
        data, status, start = asset.data, 200, 0
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and rng.endswith("-"):
            try:
                start = int(rng[len("bytes=") : -1])
            except ValueError:
                start = 0
            status = 206
        body = data[start:]
        with stub._lock:
            truncate = stub.truncate_downloads > 0 and self.command == "GET"
            if truncate:
                stub.truncate_downloads -= 1
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        if not (truncate and not stub.truncate_announce_length):
            self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("ETag", f'"{asset.etag}"')
        self.end_headers()
        if self.command == "HEAD":
            return
        if truncate:
            body = body[: int(len(body) * stub.truncate_fraction)]
            self.close_connection = True
        self.wfile.write(body)


try:  # the pytest fixture, for test modules (tests/conftest.py re-exports it)
    import pytest
except ImportError:  # pragma: no cover - the stub also works outside pytest
    pytest = None

if pytest is not None:

    @pytest.fixture
    def dandi_stub(monkeypatch):
        """A running :class:`DandiStub` serving the shared NWB file; skips without it.

        The dandi client is made quiet and fast for the test (:func:`quiet_dandi_client`).
        """
        if not SHARED_NWB.is_file():
            pytest.skip(
                f"the shared test file {SHARED_NWB} is absent (a fresh clone has no ../shared/data)"
            )
        quiet_dandi_client(monkeypatch)
        with DandiStub() as stub:
            yield stub


if __name__ == "__main__":  # serve by hand: python tests/dandi_stub.py, then Ctrl-C
    import time

    with DandiStub() as _stub:
        print(f"DANDI stand-in serving {sorted(_stub.assets)} as dandiset {_stub.dandiset}")
        print(f"export DANDI_API_URL={_stub.api_url} DANDI_NO_ET=1")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
