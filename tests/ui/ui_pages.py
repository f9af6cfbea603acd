"""What the browser tests share: where the bundled models are, and one visit of the playground."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, Page
from testkit.server import Server

REPOSITORY = Path(__file__).resolve().parents[2] / "models"
DESKTOP = {"width": 1280, "height": 900}


@dataclass
class Visit:
    page: Page
    url: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def open(self) -> Page:
        """Load the playground and wait until it has read the repository once."""
        response = self.page.goto(f"{self.url}/")
        assert response is not None and response.ok, f"GET / answered {response and response.status}"
        self.page.wait_for_selector("body[data-loaded=true]")
        return self.page


def visit(browser: Browser, server: Server, viewport: dict[str, int]) -> Iterator[Visit]:
    """A fresh page on `server` that records every URL it asks for; uncaught JavaScript errors fail the test."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(20_000)
    seen = Visit(page, server.url)
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    yield seen
    context.close()
    assert not seen.errors, f"uncaught JavaScript errors: {seen.errors}"
