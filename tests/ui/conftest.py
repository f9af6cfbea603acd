"""Browser fixtures: Debian's chromium driven by Playwright (no browser download), one real server on the
bundled models per module, and a fresh page per test that records every URL it asks for and fails the
test on any uncaught JavaScript error."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright
from testkit.server import Server, running_server
from ui_pages import DESKTOP, REPOSITORY, Visit, visit

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Playwright also gives every launch a fresh temporary --user-data-dir."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"no browser at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("ui-server") / "server.log"
    with running_server(REPOSITORY, log) as srv:
        yield srv


@pytest.fixture(scope="module")
def models(server: Server) -> dict[str, dict[str, Any]]:
    """Metadata of every ready model, by name, from the public API."""
    rows = httpx.post(f"{server.url}/v2/repository/index", json={"ready": True}).json()
    return {row["name"]: httpx.get(f"{server.url}/v2/models/{row['name']}").json() for row in rows}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Screenshots land here: $NNSERVE_TEST_ARTIFACTS/ui when set (CI keeps it), else pytest's temp dir."""
    base = os.environ.get("NNSERVE_TEST_ARTIFACTS")
    folder = Path(base) / "ui" if base else tmp_path_factory.mktemp("ui-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def desktop(browser: Browser, server: Server) -> Iterator[Visit]:
    yield from visit(browser, server, DESKTOP)


@pytest.fixture
def phone(browser: Browser, server: Server) -> Iterator[Visit]:
    yield from visit(browser, server, {"width": 390, "height": 844})
