"""The playground on the models `nnserve-train fit` makes, in headless chromium against a real server: every
model of every task gets a try-it form that fits it, and the table form built from the tabular schema
answers as `:predict` does for the same row.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Page
from testkit.server import Server, running_server
from testkit.task_models import SCHEMA, build_task_repository
from ui_pages import Visit

IMAGE_LABEL = "#image-result[aria-busy=false] [data-role=top-label]"
TABLE_LABEL = "#table-result[aria-busy=false] [data-role=top-label]"
TABLE_VERDICT = "#table-result[aria-busy=false] [data-role=verdict]"
PANELS = {
    "table-mlp": "panel-table",
    "table-ae": "panel-table",
    "colour-means": "panel-image",
    "topics": "panel-text",
    "vector-ae": "panel-instances",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Replaces conftest's server on the bundled models with one on the task models."""
    repository = build_task_repository(tmp_path_factory.mktemp("task-repository"))
    with running_server(repository, tmp_path_factory.mktemp("ui-task-server") / "server.log") as srv:
        yield srv


def _choose(page: Page, model: str) -> None:
    page.select_option("#try-model", model)
    page.locator("#try").scroll_into_view_if_needed()


def _predict(server: Server, model: str, row: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(f"{server.url}/v1/models/{model}:predict", json={"instances": [row]})
    assert answer.status_code == 200, answer.text
    prediction: dict[str, Any] = answer.json()["predictions"][0]
    return prediction


def _fill(page: Page, row: dict[str, Any]) -> None:
    """Type a row into the table form: numbers into their fields, categories picked or typed as other."""
    for index, column in enumerate(SCHEMA.columns):
        value = row[column.name]
        control = f"#table-col-{index}"
        if column.kind == "numeric":
            page.fill(control, "" if value is None else str(value))
        elif value is None or value in column.categories:
            page.select_option(control, "" if value is None else value)
        else:
            page.select_option(control, label="other…")
            page.fill(f"{control}-other", value)


def test_every_model_gets_the_panel_of_its_task(desktop: Visit, server: Server) -> None:
    page = desktop.open()
    options = page.eval_on_selector_all("#try-model option", "options => options.map(o => o.value)")
    assert sorted(options) == sorted(PANELS)
    assert page.locator("[data-try]").count() == len(PANELS)
    for model, panel in PANELS.items():
        _choose(page, model)
        visible = page.eval_on_selector_all(".panel:not([hidden])", "panels => panels.map(p => p.id)")
        assert visible == [panel], model


def test_table_form_has_one_field_per_column(desktop: Visit, server: Server, artifacts: Path) -> None:
    page = desktop.open()
    _choose(page, "table-mlp")
    fields = page.locator("#table-fields [data-column]")
    assert fields.evaluate_all("fs => fs.map(f => f.dataset.column)") == [c.name for c in SCHEMA.columns]
    assert page.get_attribute("#table-col-0", "type") == "number"
    choices = page.eval_on_selector_all("#table-col-1 option", "os => os.map(o => o.textContent)")
    assert choices == ["(missing)", "red", "green", "blue", "other…"]
    assert page.get_by_label("colour: other value").is_hidden()
    page.screenshot(path=str(artifacts / "table-form-1280.png"), full_page=True)


@pytest.mark.parametrize(
    ("row", "features"),
    [
        ({"age": 30, "colour": "red", "income": 52000, "code": "3"}, "30, 1, 0, 0, 0, 52000, 1, 0, 0, 0"),
        ({"age": None, "colour": "purple", "income": None, "code": "7.5"}, "NaN, 0, 0, 0, 1, NaN, 0, 1, 0, 0"),
        ({"age": 61.5, "colour": None, "income": 1500, "code": "not seen"}, "61.5, 0, 0, 0, 1, 1500, 0, 0, 0, 1"),
    ],
    ids=["known-values", "missing-and-unseen", "other-category"],
)
def test_table_form_answers_like_predict(desktop: Visit, server: Server, row: dict[str, Any], features: str) -> None:
    page = desktop.open()
    _choose(page, "table-mlp")
    _fill(page, row)
    page.click("#table-run")
    label = page.wait_for_selector(TABLE_LABEL)
    assert label is not None
    expected = _predict(server, "table-mlp", row)
    assert label.text_content() == expected["label"]
    shown = page.eval_on_selector_all(
        "#table-result .bars li",
        "items => items.map(i => [i.dataset.label, i.querySelector('.bar-value').textContent])",
    )
    assert shown == [[e["label"], f"{e['score']:.3f}"] for e in expected["top_k"]]
    request = page.text_content("#table-request") or ""
    assert ":predict" in request and all(f'"{name}"' in request for name in row)
    seen = page.text_content("#table-features") or ""
    assert seen.startswith(f"As the model receives it: {SCHEMA.n_features} features")
    assert seen.endswith(f": {features}"), seen


def test_table_anomaly_form_shows_the_verdict(desktop: Visit, server: Server) -> None:
    page = desktop.open()
    _choose(page, "table-ae")
    page.click("#table-run")  # every field empty: all missing, imputed, a normal row
    assert page.text_content(TABLE_VERDICT) == "normal"
    _fill(page, {"age": 500, "colour": "red", "income": 1000000, "code": "3"})
    page.click("#table-run")
    page.wait_for_function(
        "document.querySelector('#table-result[aria-busy=false] [data-role=verdict]')?.textContent === 'anomaly'"
    )
    assert "threshold 6.0000" in (page.text_content("#table-result") or "")


def test_table_form_submits_with_the_enter_key(desktop: Visit, server: Server) -> None:
    page = desktop.open()
    _choose(page, "table-mlp")
    page.focus("#table-col-2")
    page.keyboard.type("42000")
    page.keyboard.press("Enter")
    assert page.wait_for_selector(TABLE_LABEL) is not None


def test_colour_picture_upload_is_shown_as_the_model_sees_it(desktop: Visit, server: Server, tmp_path: Path) -> None:
    """A 3-channel 20x12 model with mean/std: the label, and the preprocessed picture drawn back in colour."""
    picture = tmp_path / "red.png"
    Image.new("RGB", (40, 24), (220, 30, 30)).save(picture)
    page = desktop.open()
    _choose(page, "colour-means")
    page.set_input_files("#image-upload", str(picture))
    assert page.text_content(IMAGE_LABEL) == "red"
    seen = page.evaluate(
        """(() => {
          const canvas = document.getElementById('image-seen');
          const [r, g, b] = canvas.getContext('2d').getImageData(10, 6, 1, 1).data;
          return [canvas.width, canvas.height, r, g, b];
        })()"""
    )
    assert seen[:2] == [20, 12]
    assert all(abs(got - want) <= 1 for got, want in zip(seen[2:], (220, 30, 30), strict=True)), seen


def test_vector_anomaly_panel_sends_json_instances(desktop: Visit, server: Server) -> None:
    page = desktop.open()
    _choose(page, "vector-ae")
    assert page.input_value("#instances-input") == "[[0,0,0,0]]"
    page.click("#instances-run")
    page.wait_for_selector("#instances-result[aria-busy=false] [data-role=verdict]")
    assert page.text_content("#instances-result [data-role=verdict]") == "normal"
    page.fill("#instances-input", "[[3, 0, 0, 0], [1, 2]]")
    page.click("#instances-run")
    error = page.locator("#instances-error")
    error.wait_for(state="visible")
    assert (error.text_content() or "").startswith("400: instances[1]")


def test_table_form_fits_a_phone(phone: Visit, server: Server, artifacts: Path) -> None:
    page = phone.open()
    _choose(page, "table-mlp")
    page.select_option("#table-col-1", label="other…")
    page.click("#table-run")
    page.wait_for_selector(TABLE_LABEL)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"page is {overflow}px wider than a phone screen"
    page.locator("#panel-table").screenshot(path=str(artifacts / "table-form-390.png"))
