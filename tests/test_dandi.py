"""DANDI download (disrnn.data.dandi.fetch_asset) against the stand-in server; no network.

The real ``dandi`` client runs unchanged; only its API URL points at ``tests/dandi_stub.py``,
which serves the real NWB file in ``../shared/data`` as dandiset 000207. The truth that
downloads are compared with is the file itself and the sha256 published in
``../shared/data/README.md``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
from pathlib import Path

import pytest
from dandi_stub import (
    ASSET_PATH,
    DANDISET,
    PUBLISHED_VERSION,
    SHARED_NWB,
    DandiStub,
    dandi_etag,
    quiet_dandi_client,
)

import disrnn.data.dandi as dandi_mod
from disrnn.cli import main
from disrnn.data.dandi import DandiEtag, DigestMismatchError, fetch_asset

README_SHA256 = "1f6d811347d83d9693ce824bded9d73f5c88d8542e78069211da52381153f046"
README_SIZE = 2_070_173


def _files(root: Path) -> list[str]:
    """Every file below ``root`` (hidden .part files included), relative, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Record the backoff waits instead of sleeping."""
    waits: list[float] = []
    monkeypatch.setattr(dandi_mod, "_sleep", waits.append)
    return waits


@pytest.fixture
def quiet(monkeypatch):
    if not SHARED_NWB.is_file():
        pytest.skip(f"the shared test file {SHARED_NWB} is absent")
    quiet_dandi_client(monkeypatch)


# ----------------------------------------------------------------------------- success
def test_fetch_writes_the_exact_file_and_sidecar(dandi_stub, tmp_path):
    out = fetch_asset(DANDISET, ASSET_PATH, tmp_path, api_url=dandi_stub.api_url)

    assert out == tmp_path / "sub-4" / "sub-4_ses-4_ecephys+image.nwb"
    data = out.read_bytes()
    assert data == SHARED_NWB.read_bytes()
    assert len(data) == README_SIZE
    assert hashlib.sha256(data).hexdigest() == README_SHA256
    sidecar = json.loads(Path(f"{out}.dandi.json").read_text())
    assert sidecar == {
        "dandiset": "000207",
        "version": PUBLISHED_VERSION,  # default: the most recent published version
        "asset_path": ASSET_PATH,
        "api_url": dandi_stub.api_url,
        "sha256": README_SHA256,
        "size": README_SIZE,
    }
    assert _files(tmp_path) == [f"{ASSET_PATH}", f"{ASSET_PATH}.dandi.json"]


def test_draft_version_and_api_url_from_environment(dandi_stub, tmp_path, monkeypatch):
    monkeypatch.setenv("DANDI_API_URL", dandi_stub.api_url)
    out = fetch_asset(DANDISET, ASSET_PATH, tmp_path, version="draft")
    sidecar = json.loads(Path(f"{out}.dandi.json").read_text())
    assert sidecar["version"] == "draft"
    assert sidecar["api_url"] == dandi_stub.api_url
    assert any("/versions/draft/assets/" in path for _, path, _ in dandi_stub.requests)


def test_etag_only_metadata_is_verified(dandi_stub, tmp_path):
    dandi_stub.digest_types = ("dandi:dandi-etag",)
    out = fetch_asset(DANDISET, ASSET_PATH, tmp_path, api_url=dandi_stub.api_url)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == README_SHA256
    # the sidecar's sha256 is computed from the bytes, not copied from the metadata
    assert json.loads(Path(f"{out}.dandi.json").read_text())["sha256"] == README_SHA256


def test_dandi_etag_against_independent_computations():
    from dandischema.digests.dandietag import ETagHashlike

    data = SHARED_NWB.read_bytes() if SHARED_NWB.is_file() else bytes(range(256)) * 4000
    ours = DandiEtag(len(data))
    for i in range(0, len(data), 12345):  # chunks that do not align with anything
        ours.update(data[i : i + 12345])
    reference = ETagHashlike(len(data))
    reference.update(data)
    assert ours.hexdigest() == reference.hexdigest() == dandi_etag(data)

    class SmallParts(DandiEtag):
        DEFAULT_PART = 1000

    small = SmallParts(2500)
    blob = bytes(range(250)) * 10
    small.update(blob[:1700])
    small.update(blob[1700:])
    parts = [blob[:1000], blob[1000:2000], blob[2000:]]
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    assert small.hexdigest() == f"{hashlib.md5(md5s).hexdigest()}-3"


# ----------------------------------------------------------------------- unknown names
def test_unknown_dandiset_lists_close_matches(dandi_stub, tmp_path):
    with pytest.raises(ValueError, match="no dandiset '000208'") as err:
        fetch_asset("000208", ASSET_PATH, tmp_path, api_url=dandi_stub.api_url)
    assert "'000207'" in str(err.value)
    assert _files(tmp_path) == []


def test_unknown_version_lists_available(dandi_stub, tmp_path):
    with pytest.raises(ValueError, match="no version '0.220927.1851'") as err:
        fetch_asset(
            DANDISET, ASSET_PATH, tmp_path, version="0.220927.1851", api_url=dandi_stub.api_url
        )
    assert f"'{PUBLISHED_VERSION}'" in str(err.value) and "'draft'" in str(err.value)


def test_unknown_asset_lists_close_matches(dandi_stub, tmp_path):
    with pytest.raises(
        FileNotFoundError, match="no asset at 'sub-4/sub-4_ses-4_ecephys.nwb'"
    ) as err:
        fetch_asset(DANDISET, "sub-4/sub-4_ses-4_ecephys.nwb", tmp_path, api_url=dandi_stub.api_url)
    assert repr(ASSET_PATH) in str(err.value)
    assert dandi_stub.download_count() == 0


def test_no_published_version_suggests_draft(quiet, tmp_path):
    with DandiStub(published_versions=()) as stub:
        with pytest.raises(ValueError, match="no published version.*--version draft"):
            fetch_asset(DANDISET, ASSET_PATH, tmp_path, api_url=stub.api_url)
        assert fetch_asset(
            DANDISET, ASSET_PATH, tmp_path, version="draft", api_url=stub.api_url
        ).is_file()


def test_unreachable_api_is_a_connection_error(quiet, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionError, match="cannot reach a DANDI API"):
        fetch_asset(DANDISET, ASSET_PATH, tmp_path, api_url=f"http://127.0.0.1:{port}/api")


# ------------------------------------------------------------------------------- globs
def test_glob_with_one_match(dandi_stub, tmp_path):
    out = fetch_asset(DANDISET, "sub-4/*.nwb", tmp_path, api_url=dandi_stub.api_url)
    assert out == tmp_path / ASSET_PATH
    assert json.loads(Path(f"{out}.dandi.json").read_text())["asset_path"] == ASSET_PATH


def test_glob_with_several_matches_lists_them(quiet, tmp_path):
    others = ["sub-4/sub-4_ses-5_ecephys.nwb", "sub-4/sub-4_ses-6_ecephys.nwb"]
    files = {ASSET_PATH: SHARED_NWB, **{o: o.encode() for o in others}}
    # page_size=1: the client fetches pages 2 and 3 concurrently, as with a big dandiset
    with DandiStub(files=files, page_size=1) as stub:
        with pytest.raises(ValueError, match="matches 3 assets") as err:
            fetch_asset(DANDISET, "sub-4/*", tmp_path, api_url=stub.api_url)
        for path in (ASSET_PATH, *others):
            assert repr(path) in str(err.value)
        assert stub.download_count() == 0
        # '*' does not cross '/': a pattern one level up matches nothing
        with pytest.raises(FileNotFoundError, match="no asset matches"):
            fetch_asset(DANDISET, "*.nwb", tmp_path, api_url=stub.api_url)
        out = fetch_asset(DANDISET, "sub-4/*ses-6*", tmp_path, api_url=stub.api_url)
        assert out.read_bytes() == others[1].encode()
    assert _files(tmp_path) == [others[1], f"{others[1]}.dandi.json"]


# ------------------------------------------------------------------------ path escapes
@pytest.mark.parametrize(
    "bad",
    ["../evil.nwb", "sub-4/../../evil.nwb", "/etc/passwd", "C:\\evil.nwb", "sub-4//x.nwb", ""],
)
def test_escaping_paths_are_rejected_before_any_request(dandi_stub, tmp_path, bad):
    with pytest.raises(ValueError, match="asset path"):
        fetch_asset(DANDISET, bad, tmp_path / "out", api_url=dandi_stub.api_url)
    assert dandi_stub.requests == []
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.nwb").exists()


def test_escaping_path_from_the_server_is_rejected(quiet, tmp_path):
    with DandiStub(files={"sub-1/../../evil.nwb": b"evil"}) as stub:
        with pytest.raises(ValueError, match="returned by the server"):
            fetch_asset(DANDISET, "sub-1/*/*/evil.nwb", tmp_path / "out", api_url=stub.api_url)
        assert stub.download_count() == 0
    assert _files(tmp_path) == []


# ------------------------------------------------------------------ transient failures
def test_server_errors_are_retried_with_exponential_backoff(dandi_stub, tmp_path, sleeps):
    dandi_stub.fail_downloads = 2
    out = fetch_asset(DANDISET, ASSET_PATH, tmp_path, api_url=dandi_stub.api_url, backoff=0.5)
    assert sleeps == [0.5, 1.0]
    assert dandi_stub.download_count() == 3
    assert hashlib.sha256(out.read_bytes()).hexdigest() == README_SHA256


def test_server_errors_give_up_after_max_retries(dandi_stub, tmp_path, sleeps):
    dandi_stub.fail_downloads = 100
    with pytest.raises(ConnectionError, match="after 3 attempt"):
        fetch_asset(
            DANDISET, ASSET_PATH, tmp_path, api_url=dandi_stub.api_url, max_retries=2, backoff=2
        )
    assert sleeps == [2, 4]
    assert dandi_stub.download_count() == 3
    assert _files(tmp_path) == []


def test_client_errors_are_not_retried(dandi_stub, tmp_path, sleeps):
    dandi_stub.fail_downloads, dandi_stub.fail_status = 1, 403
    with pytest.raises(PermissionError, match="HTTP 403"):
        fetch_asset(DANDISET, ASSET_PATH, tmp_path, api_url=dandi_stub.api_url)
    assert sleeps == [] and dandi_stub.download_count() == 1
    assert _files(tmp_path) == []


@pytest.mark.parametrize("announce_length", [True, False])
def test_truncated_body_is_retried(dandi_stub, tmp_path, sleeps, announce_length):
    dandi_stub.truncate_downloads = 1
    dandi_stub.truncate_announce_length = announce_length
    out = fetch_asset(DANDISET, ASSET_PATH, tmp_path, api_url=dandi_stub.api_url, backoff=0.01)
    assert sleeps == [0.01]
    assert out.read_bytes() == SHARED_NWB.read_bytes()


@pytest.mark.parametrize("announce_length", [True, False])
def test_truncated_body_every_time_leaves_no_partial_file(
    dandi_stub, tmp_path, sleeps, announce_length
):
    dandi_stub.truncate_downloads = 100
    dandi_stub.truncate_announce_length = announce_length
    with pytest.raises(ConnectionError, match="IncompleteRead|truncated"):
        fetch_asset(
            DANDISET, ASSET_PATH, tmp_path, api_url=dandi_stub.api_url, max_retries=1, backoff=0
        )
    assert dandi_stub.download_count() == 2
    assert _files(tmp_path) == []


@pytest.mark.parametrize("digests", [("dandi:dandi-etag", "dandi:sha2-256"), ("dandi:dandi-etag",)])
def test_wrong_digest_raises_and_leaves_nothing(dandi_stub, tmp_path, sleeps, digests):
    dandi_stub.wrong_digest = True
    dandi_stub.digest_types = digests
    with pytest.raises(DigestMismatchError, match="do not match"):
        fetch_asset(DANDISET, ASSET_PATH, tmp_path, api_url=dandi_stub.api_url)
    assert _files(tmp_path) == []  # neither the file, nor a .part file, nor a sidecar
    assert sleeps == []


# ------------------------------------------------------------------ token and re-runs
TOKEN = "sekrit-0123456789abcdef-token"


def test_token_is_used_but_never_leaked(quiet, tmp_path, monkeypatch, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("DANDI_API_KEY", TOKEN)
    with DandiStub(token=TOKEN) as stub:
        out = fetch_asset(DANDISET, ASSET_PATH, tmp_path / "ok", api_url=stub.api_url)
        assert f"token {TOKEN}" in stub.authorizations  # the client did send it
        stub.wrong_digest = True
        with pytest.raises(DigestMismatchError) as mismatch:
            fetch_asset(DANDISET, ASSET_PATH, tmp_path / "bad", api_url=stub.api_url)
    with DandiStub(token="another-token") as stub:
        with pytest.raises(PermissionError, match="DANDI_API_KEY") as rejected:
            fetch_asset(DANDISET, ASSET_PATH, tmp_path / "rejected", api_url=stub.api_url)
    assert out.is_file()
    assert TOKEN not in Path(f"{out}.dandi.json").read_text()
    assert TOKEN not in caplog.text and "sekrit" not in caplog.text
    assert caplog.records  # something was logged, so the check above can fail
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err
    for err in (mismatch.value, rejected.value):
        assert TOKEN not in str(err) and TOKEN not in repr(err.__cause__)


def test_existing_file_with_right_digest_is_not_downloaded_again(dandi_stub, tmp_path):
    out = fetch_asset(DANDISET, ASSET_PATH, tmp_path, api_url=dandi_stub.api_url)
    mtime = out.stat().st_mtime_ns
    Path(f"{out}.dandi.json").unlink()
    assert fetch_asset(DANDISET, ASSET_PATH, tmp_path, api_url=dandi_stub.api_url) == out
    assert dandi_stub.download_count() == 1
    assert out.stat().st_mtime_ns == mtime
    assert json.loads(Path(f"{out}.dandi.json").read_text())["sha256"] == README_SHA256
    # a corrupted copy of the same size is replaced
    data = bytearray(out.read_bytes())
    data[100] ^= 0xFF
    out.write_bytes(bytes(data))
    fetch_asset(DANDISET, ASSET_PATH, tmp_path, api_url=dandi_stub.api_url)
    assert dandi_stub.download_count() == 2
    assert hashlib.sha256(out.read_bytes()).hexdigest() == README_SHA256


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dandiset": "207"}, "six digits"),
        ({"max_retries": -1}, "max_retries"),
        ({"backoff": -1.0}, "backoff"),
        ({"version": ""}, "version"),
        ({"api_url": "ftp://example.org"}, "http"),
    ],
)
def test_bad_arguments_fail_before_any_request(dandi_stub, tmp_path, kwargs, match):
    args = {
        "dandiset": DANDISET,
        "path": ASSET_PATH,
        "out_dir": tmp_path,
        "api_url": dandi_stub.api_url,
    }
    with pytest.raises(ValueError, match=match):
        fetch_asset(**{**args, **kwargs})
    assert dandi_stub.requests == []


# --------------------------------------------------------------------------------- CLI
def test_cli_fetch(dandi_stub, tmp_path, capsys):
    argv = ["fetch", "--dandiset", DANDISET, "--path", ASSET_PATH, "--api-url", dandi_stub.api_url]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / ASSET_PATH)
    assert hashlib.sha256((tmp_path / ASSET_PATH).read_bytes()).hexdigest() == README_SHA256
    bad = [
        "fetch",
        "--dandiset",
        DANDISET,
        "--path",
        "sub-4/nope.nwb",
        "--api-url",
        dandi_stub.api_url,
    ]
    assert main([*bad, "--out", str(tmp_path)]) == 2
    assert "no asset at 'sub-4/nope.nwb'" in capsys.readouterr().err
