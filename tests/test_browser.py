"""Open the generated reports in headless Chromium (Debian's /usr/bin/chromium).

Checks: every image loaded (naturalWidth > 0), no console errors or page errors, every
request is file:// or data: (nothing to another host), the links of the summary
resolve to files; a full-page screenshot of each report goes to ``test-artifacts/``.

Driven by Playwright pointed at the system binary (no browser download); skipped, with
the reason, only when no Chromium binary exists or Playwright is not installed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from helpers.reports import (
    FAKE_METHODS,
    FAKE_SEEDS,
    fake_dataset,
    shared_real_results,
    write_fake_eval,
)

from disrnn.data.io import save_dataset
from disrnn.report import render_session_report, render_summary_report

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
]


def _chromium() -> str:
    for cand in (
        os.environ.get("CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if cand and Path(cand).exists():
            return cand
    pytest.skip("no chromium binary (/usr/bin/chromium); .ci/run installs Debian's chromium")


@pytest.fixture(scope="module")
def browser():
    exe = _chromium()
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright (Python) is not installed"
    )
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def check_page(browser, path: Path, shot: str) -> dict:
    """Load ``path`` and return what the page did; saves ``test-artifacts/<shot>.png``."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests, console, errors = [], [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: console.append((m.type, m.text)))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.resolve().as_uri(), wait_until="load")
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    images = page.evaluate(
        "Array.from(document.images).map(i => ({w: i.naturalWidth, h: i.naturalHeight, alt: i.alt}))"
    )
    links = page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    title = page.title()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
    page.screenshot(path=str(ARTIFACTS / f"{shot}-top.png"))
    page.close()
    return {
        "requests": requests,
        "console": console,
        "errors": errors,
        "images": images,
        "links": links,
        "title": title,
    }


def assert_clean(result: dict, min_images: int) -> None:
    assert len(result["images"]) >= min_images, result["images"]
    bad = [i for i in result["images"] if i["w"] <= 0 or i["h"] <= 0]
    assert not bad, f"images that did not load: {bad}"
    assert not [c for c in result["console"] if c[0] in ("error", "warning")], result["console"]
    assert not result["errors"], result["errors"]
    foreign = [u for u in result["requests"] if not u.startswith(("file://", "data:"))]
    assert not foreign, f"requests to other hosts: {foreign}"
    assert any(u.startswith("file://") for u in result["requests"])


@pytest.fixture(scope="module")
def fake_reports(tmp_path_factory):
    """FIXTURE evaluation folders (contract of docs/design.md), rendered to reports."""
    root = tmp_path_factory.mktemp("browser") / "results"
    ds = fake_dataset(np.random.default_rng(0))
    dpath = save_dataset(ds, root / "fake_a" / "dataset.nc")
    evals = [write_fake_eval(root, "fake_a", m, s, ds) for m in FAKE_METHODS for s in FAKE_SEEDS]
    reports = root / "reports"
    render_session_report("fake_a", dpath, evals, reports / "fake_a.html")
    render_summary_report(evals, reports / "index.html")
    return reports


def test_fake_reports_in_chromium(browser, fake_reports):
    session = check_page(browser, fake_reports / "fake_a.html", "report-fixture-session")
    assert_clean(session, min_images=3 + 6 * len(FAKE_METHODS))
    assert "fake_a" in session["title"]
    summary = check_page(browser, fake_reports / "index.html", "report-fixture-index")
    assert_clean(summary, min_images=1)
    files = [Path(unquote(urlparse(u).path)) for u in summary["links"] if u.startswith("file://")]
    assert files and all(f.exists() for f in files), files


def test_real_reports_in_chromium(browser, tmp_path_factory):
    res = shared_real_results(tmp_path_factory)
    reports = tmp_path_factory.mktemp("browser_real") / "reports"
    render_session_report(
        res["session"], res["dataset"], res["evals"], reports / f"{res['session']}.html"
    )
    render_summary_report(res["evals"], reports / "index.html")
    result = check_page(browser, reports / f"{res['session']}.html", "report-session")
    assert_clean(result, min_images=3 + 6)
    summary = check_page(browser, reports / "index.html", "report-index")
    assert_clean(summary, min_images=1)
