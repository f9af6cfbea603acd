"""What the browser tests share: where the bundled models are, and one visit of the playground."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Page

REPOSITORY = Path(__file__).resolve().parents[2] / "models"


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
