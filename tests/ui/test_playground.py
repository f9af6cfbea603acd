"""The playground in a real headless chromium against a real server on the bundled models: what a
newcomer sees and does at http://127.0.0.1:<port>/, through the same public endpoints a client calls."""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Page
from testkit.digits import render_digit
from testkit.server import Server, running_server
from ui_pages import REPOSITORY, Visit

from service.schema.config import is_valid_model_name, list_versions
from training.data.digits import load_digits_split

IMAGE_LABEL = "#image-result[aria-busy=false] [data-role=top-label]"
"""The top label of the latest run (a stroke starts a run; earlier answers may still be on screen)."""
TEXT_LABEL = "#text-result[aria-busy=false] [data-role=top-label]"
VERDICT = "#image-result[aria-busy=false] [data-role=verdict]"
SPAM = "WINNER!! You have been selected to receive a £900 prize reward! To claim call 09061701461. Valid 12 hours only."


def first_model(models: dict[str, dict[str, Any]], task: str) -> str:
    names = sorted(name for name, meta in models.items() if meta["task"] == task)
    assert names, f"no ready {task} model among {sorted(models)}"
    return names[0]


def right_digits(server: Server, model: str, count: int) -> list[tuple[int, bytes]]:
    """Held-out test digits (label, PNG) of different classes that the model gets right via :predict."""
    test = load_digits_split().test
    chosen = []
    for pixels, label in zip(test.x, test.y, strict=True):
        png = render_digit(pixels, 96)  # bright ink on dark, as a user would save one
        answer = httpx.post(
            f"{server.url}/v1/models/{model}:predict",
            json={"instances": [{"b64": base64.b64encode(png).decode()}]},
        ).json()
        if answer["predictions"][0]["label"] == str(label) and label not in {c[0] for c in chosen}:
            chosen.append((int(label), png))
        if len(chosen) == count:
            return chosen
    raise AssertionError(f"{model} got fewer than {count} test digits right")


def choose(page: Page, model: str) -> None:
    page.select_option("#try-model", model)
    page.locator("#try").scroll_into_view_if_needed()


def draw(page: Page, strokes: list[list[tuple[float, float]]]) -> None:
    """Mouse strokes on the drawing pad; points are fractions (0..1) of its width and height."""
    pad = page.locator("#sketch")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    assert box is not None
    for stroke in strokes:
        points = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(x, y, steps=4)
        page.mouse.up()


def arc(cx: float, cy: float, rx: float, ry: float, turns: float = 1.0) -> list[tuple[float, float]]:
    """Clockwise from the top of an ellipse, as people write a zero."""
    angles = [step / 24 * turns * 2 * math.pi for step in range(25)]
    return [(cx + rx * math.sin(a), cy - ry * math.cos(a)) for a in angles]


DRAWN_DIGITS = {
    "0": [arc(0.5, 0.5, 0.18, 0.3)],
    "1": [[(0.42, 0.3), (0.55, 0.2), (0.55, 0.8)]],
    "4": [[(0.55, 0.2), (0.3, 0.6), (0.72, 0.6)], [(0.6, 0.4), (0.6, 0.82)]],
    "7": [[(0.3, 0.22), (0.7, 0.22), (0.45, 0.8)]],
}
"""Strokes of each digit as fractions of the drawing pad, the way a person draws them."""


def test_status_page_lists_every_model_as_ready(desktop: Visit, models: dict[str, Any], artifacts: Path) -> None:
    page = desktop.open()
    on_disk = sorted(p.name for p in REPOSITORY.iterdir() if p.is_dir() and is_valid_model_name(p.name))
    assert on_disk, f"no model in {REPOSITORY}"
    for name in on_disk:
        card = page.locator(f"article[data-model='{name}']")
        assert card.get_attribute("data-ready") == "true", card.inner_text()
        assert card.locator("[data-role=readiness]").inner_text() == "ready"
        versions = card.locator(".versions").inner_text()
        assert f"version {list_versions(REPOSITORY / name)[-1]}" in versions
        assert card.locator("[data-role=test-metrics] tr").count() > 0, f"{name}: no test metrics shown"
    assert page.locator("#server-version").inner_text().startswith("nnserve ")
    assert page.locator("#server-ready").inner_text() == "ready"
    assert page.locator("#server-provider").inner_text() in {"cpu", "cuda", "cpu, cuda", "cuda, cpu"}
    page.screenshot(path=str(artifacts / "status-1280.png"), full_page=True)


def test_drawn_digits_are_classified_right(desktop: Visit, models: dict[str, Any], artifacts: Path) -> None:
    page = desktop.open()
    choose(page, first_model(models, "image-classification"))
    for digit, strokes in DRAWN_DIGITS.items():
        page.click("#sketch-clear")
        draw(page, strokes)
        page.wait_for_selector(IMAGE_LABEL)
        assert page.locator(IMAGE_LABEL).inner_text() == digit
        assert page.locator("#image-result .bars li").count() == 5
        page.locator("#panel-image").screenshot(path=str(artifacts / f"try-image-drawn-{digit}.png"))
    seen = page.evaluate("[document.getElementById('image-seen').width, document.getElementById('image-seen').height]")
    assert seen == [8, 8], "the model's 8x8 input was not drawn"


def test_uploaded_test_digits_show_their_labels(
    desktop: Visit, server: Server, models: dict[str, Any], tmp_path: Path
) -> None:
    model = first_model(models, "image-classification")
    page = desktop.open()
    choose(page, model)
    for label, png in right_digits(server, model, count=3):
        path = tmp_path / f"digit-{label}.png"
        path.write_bytes(png)
        page.set_input_files("#image-upload", str(path))
        page.wait_for_function(
            "([selector, label]) => document.querySelector(selector)?.textContent === label",
            arg=[IMAGE_LABEL, str(label)],
        )


def test_spam_text_is_classified_as_spam(desktop: Visit, models: dict[str, Any], artifacts: Path) -> None:
    page = desktop.open()
    names = sorted(name for name, meta in models.items() if meta["task"] == "text-classification")
    assert names, "no text classifier is ready"
    for name in names:
        choose(page, name)
        page.fill("#text-input", SPAM)
        page.click("#text-run")
        page.wait_for_selector(TEXT_LABEL)
        assert page.locator(TEXT_LABEL).inner_text() == "spam", name
        spam_score = float(page.locator("#text-result li[data-label=spam] .bar-value").inner_text())
        assert spam_score > 0.5, name
        assert "tokens" in page.locator("#text-tokens").inner_text()
    page.locator("#panel-text").screenshot(path=str(artifacts / "try-text.png"))


def test_anomaly_panel_shows_score_against_threshold(
    desktop: Visit, server: Server, models: dict[str, Any], tmp_path: Path, artifacts: Path
) -> None:
    model = first_model(models, "anomaly-detection")
    _, png = right_digits(server, first_model(models, "image-classification"), count=1)[0]
    path = tmp_path / "digit.png"
    path.write_bytes(png)
    page = desktop.open()
    choose(page, model)
    page.set_input_files("#image-upload", str(path))
    page.wait_for_selector(VERDICT)
    assert page.locator(VERDICT).inner_text() in {"normal", "anomaly"}
    assert "threshold" in page.locator("#image-result").inner_text()
    config = httpx.get(f"{server.url}/v2/models/{model}/config").json()["nnserve"]
    if config["anomaly"].get("reconstruction"):
        page.wait_for_selector("#recon-figure:not([hidden])")
    page.locator("#panel-image").screenshot(path=str(artifacts / "try-anomaly.png"))


def test_generation_streams_text_over_several_updates(desktop: Visit, models: dict[str, Any], artifacts: Path) -> None:
    page = desktop.open()
    choose(page, first_model(models, "text-generation"))
    page.evaluate(
        """() => {
          const output = document.getElementById('gen-output');
          window.lengths = [];
          new MutationObserver(() => window.lengths.push(output.textContent.length))
            .observe(output, {childList: true, characterData: true, subtree: true});
        }"""
    )
    page.fill("#gen-max-tokens", "32")
    page.fill("#gen-seed", "7")
    page.click("#gen-run")
    page.wait_for_function("!['–', 'streaming…'].includes(document.getElementById('gen-finish').textContent)")
    assert page.locator("#gen-error").is_hidden(), page.locator("#gen-error").inner_text()
    lengths = [n for n in page.evaluate("window.lengths") if n > 0]
    assert len(lengths) >= 3 and lengths == sorted(lengths) and lengths[-1] > lengths[0], lengths
    assert page.locator("#gen-ttft").inner_text().endswith(" ms")
    assert float(page.locator("#gen-tps").inner_text()) > 0
    page.locator("#panel-generate").screenshot(path=str(artifacts / "try-generate.png"))


def test_api_error_is_shown_as_a_message(desktop: Visit, models: dict[str, Any], tmp_path: Path) -> None:
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("this is text, not a picture")
    page = desktop.open()
    choose(page, first_model(models, "image-classification"))
    page.set_input_files("#image-upload", str(not_an_image))
    error = page.locator("#image-error")
    error.wait_for(state="visible")
    assert error.inner_text().startswith("400: ")
    assert "cannot decode image" in error.inner_text()
    assert page.locator("#image-result").inner_text() == ""


def test_live_counter_increases_after_requests(desktop: Visit, server: Server, models: dict[str, Any]) -> None:
    page = desktop.open()
    page.wait_for_function("document.querySelector('#live-table tbody tr') !== null")
    before = int(page.locator("#live-requests-total").get_attribute("data-value") or "0")
    model = first_model(models, "text-classification")
    for _ in range(5):
        response = httpx.post(f"{server.url}/v1/models/{model}:predict", json={"instances": [SPAM]})
        assert response.status_code == 200
    page.wait_for_function(
        "target => Number(document.getElementById('live-requests-total').dataset.value) >= target",
        arg=before + 5,
    )
    row = page.locator(f"#live-table tr[data-model='{model}'] td[data-figure=requests]")
    assert int(row.inner_text()) >= 5
    page.wait_for_function(
        "model => document.querySelector(`#live-table tr[data-model='${model}'] td[data-figure=p99_ms]`)"
        "?.textContent !== '–'",
        arg=model,
    )


def test_page_requests_nothing_outside_the_server(desktop: Visit) -> None:
    page = desktop.open()
    page.wait_for_function("document.querySelector('#live-table tbody tr') !== null")
    for details in page.locator("article.model details").all():
        details.locator("summary").click()
    page.wait_for_load_state("networkidle")
    server = urlsplit(desktop.url)
    assert desktop.requests
    for url in desktop.requests:
        parts = urlsplit(url)
        assert parts.scheme == "data" or (parts.hostname, parts.port) == (server.hostname, server.port), url


def test_try_it_works_from_the_keyboard(desktop: Visit, models: dict[str, Any]) -> None:
    page = desktop.open()
    choose(page, first_model(models, "text-classification"))
    page.focus("#text-input")
    page.keyboard.press("Control+A")
    page.keyboard.type(SPAM)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "text-run"
    page.keyboard.press("Enter")
    page.wait_for_selector(TEXT_LABEL)


OVERFLOWING = """() => {
  const out = [];
  for (const box of document.querySelectorAll(".panel, article.model, .charts figure")) {
    const style = getComputedStyle(box);
    const inset = parseFloat(style.paddingRight) + parseFloat(style.borderRightWidth);
    const right = box.getBoundingClientRect().right - inset;
    for (const child of box.querySelectorAll("*")) {
      const rect = child.getBoundingClientRect();
      if (rect.width && !child.closest("details:not([open]), .table-scroll") && rect.right > right + 0.5) {
        const name = `${child.tagName.toLowerCase()}#${child.id}.${child.className}`;
        out.push(`${name} sticks out of ${box.id || box.className}`);
      }
    }
  }
  return out;
}"""
"""Elements wider than the card or panel holding them (what a phone user would see cut off)."""


def test_phone_width_fits_without_horizontal_scroll(phone: Visit, models: dict[str, Any], artifacts: Path) -> None:
    page = phone.open()
    page.wait_for_function("document.querySelector('#live-table tbody tr') !== null")
    for task in ("image-classification", "text-classification", "text-generation"):
        choose(page, first_model(models, task))
        assert page.evaluate(OVERFLOWING) == [], task
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"page is {overflow}px wider than a phone screen"
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / "status-390.png"), full_page=True)


def test_root_is_404_when_ui_is_off(tmp_path: Path) -> None:
    empty = tmp_path / "repository"
    empty.mkdir()
    env = {"NNSERVE_UI": "false", "NNSERVE_READY_WHEN_EMPTY": "true"}
    with running_server(empty, tmp_path / "server.log", env=env) as off:
        for path in ("/", "/ui/stats", "/ui/static/app.js"):
            response = httpx.get(off.url + path)
            assert response.status_code == 404, path
            assert "error" in response.json()
        assert httpx.get(off.url + "/v2").status_code == 200
