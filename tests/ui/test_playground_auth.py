"""The playground on a server that wants a key for everything (NNSERVE_AUTH_INFERENCE=true): it asks for
one, keeps it in the tab, and from then on every call (cards, stats, curves, a prediction) carries it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser
from testkit.server import Server, running_server
from ui_pages import DESKTOP, REPOSITORY, Visit, visit

KEY = "ui-test-inference-key"
WRONG = "not-the-key"


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("ui-locked") / "server.log"
    args = ["--auth-inference", "--inference-api-keys", KEY]
    with running_server(REPOSITORY, log, args=args) as srv:
        yield srv


@pytest.fixture
def locked(browser: Browser, locked_server: Server) -> Iterator[Visit]:
    yield from visit(browser, locked_server, DESKTOP)


def _use_key(visit: Visit, key: str) -> None:
    visit.page.wait_for_selector("#key-form:not([hidden])")
    visit.page.fill("#api-key", key)
    visit.page.click("#key-form button[type=submit]")


def test_key_is_asked_for_then_sent_with_every_call(locked: Visit) -> None:
    page = locked.open()
    assert "API key" in page.locator("#page-error").inner_text()
    assert page.locator("article[data-model]").count() == 0

    _use_key(locked, WRONG)
    page.wait_for_function("document.getElementById('page-error').textContent.includes('refused')")

    _use_key(locked, KEY)
    page.wait_for_selector("article[data-model='digits-cnn'][data-ready=true]")
    assert page.locator("#key-form").is_hidden()
    assert page.locator("#page-error").is_hidden()
    page.wait_for_function(
        "[...document.querySelectorAll('img[alt^=\"Training curves\"]')].some(i => i.src.startsWith('blob:'))"
    )
    page.wait_for_function("Number(document.getElementById('live-requests-total').dataset.value) > 0")
    assert page.evaluate("sessionStorage.getItem('nnserve.apiKey')") == KEY
