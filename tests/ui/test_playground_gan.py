"""The digits-gan card of the playground in a real headless chromium: a grid of 16 generated digits
captioned by digits-cnn, and a latent walk, agreeing with `:predict` and v2 `infer` on the same seeds."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
from playwright.sync_api import Page
from testkit.server import Server
from ui_pages import Visit

GRID = "#gan-grid[aria-busy=false] figure"
WALK = "#gan-walk[aria-busy=false] canvas"


def predict(server: Server, instance: dict[str, Any], **parameters: Any) -> dict[str, Any]:
    body = {"instances": [instance], "parameters": parameters}
    response = httpx.post(f"{server.url}/v1/models/digits-gan:predict", json=body, timeout=30)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()["predictions"][0]
    return answer


def open_gan(visit: Visit) -> Page:
    page = visit.open()
    page.select_option("#try-model", "digits-gan")
    page.locator("#panel-gan").scroll_into_view_if_needed()
    return page


def canvas_levels(page: Page, index: int) -> np.ndarray:
    """The red channel of a walk frame's 8x8 canvas (grey images: all channels equal)."""
    data = page.evaluate(
        """(i) => {
            const canvas = document.querySelectorAll('#gan-walk canvas')[i];
            return Array.from(canvas.getContext('2d').getImageData(0, 0, 8, 8).data);
        }""",
        index,
    )
    return np.asarray(data, dtype=np.int64).reshape(8, 8, 4)[..., 0]


def test_gan_card_shows_sixteen_digits_captioned_by_digits_cnn(desktop: Visit, server: Server) -> None:
    page = open_gan(desktop)
    page.select_option("#gan-label", "7")
    page.fill("#gan-seed", "5")
    page.click("#gan-run")
    page.wait_for_selector("#gan-seed-used[data-seed='5']")
    figures = page.locator(GRID)
    assert figures.count() == 16
    expected = predict(server, {"label": "7", "seed": 5, "count": 16})
    sources = [figures.nth(i).locator("img").get_attribute("src") for i in range(16)]
    assert sources == [f"data:image/png;base64,{image['b64']}" for image in expected["images"]]
    captions = [figures.nth(i).locator("figcaption").get_attribute("data-label") for i in range(16)]
    assert captions.count("7") >= 12, captions


def test_gan_card_random_seed_is_shown_and_reproduces(desktop: Visit, server: Server) -> None:
    page = open_gan(desktop)
    page.select_option("#gan-label", "3")
    page.click("#gan-random")
    page.wait_for_selector("#gan-seed-used[data-seed]")
    page.wait_for_selector(GRID)
    seed = int(page.locator("#gan-seed-used").get_attribute("data-seed") or "-1")
    first = page.locator(GRID).first.locator("img").get_attribute("src")
    again = predict(server, {"label": "3", "seed": seed, "count": 16})
    assert first == f"data:image/png;base64,{again['images'][0]['b64']}"


def test_gan_card_latent_walk_ends_on_the_two_seeds(desktop: Visit, server: Server) -> None:
    page = open_gan(desktop)
    page.select_option("#gan-label", "2")
    page.fill("#gan-walk-from", "10")
    page.fill("#gan-walk-to", "20")
    page.click("#gan-walk-run")
    page.wait_for_selector(WALK)
    frames = page.locator(WALK)
    assert frames.count() == 9
    for index, seed in ((0, 10), (8, 20)):
        pixels = np.asarray(predict(server, {"label": "2", "seed": seed}, raw=True)["images"][0]["pixels"])
        expected = np.clip(np.rint(pixels[0] * 255.0 / 16.0), 0, 255)
        assert np.abs(canvas_levels(page, index) - expected).max() <= 1
    middle = canvas_levels(page, 4)
    assert not np.array_equal(middle, canvas_levels(page, 0))
