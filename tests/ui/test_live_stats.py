"""The live figures behind /ui/stats, from a real Metrics object, and the UI router on a tiny app."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.api.ui import LiveHistory, create_router, quantile
from service.metrics import Metrics
from service.repository.registry import ModelRepository
from service.settings import Settings

SERVED = {("digits", "1"): "image-classification", ("gpt", "2"): "text-generation"}


def figures(body: dict, name: str) -> dict:
    return next(m for m in body["models"] if m["name"] == name)


def test_quantile_interpolates_inside_the_bucket() -> None:
    buckets = {0.1: 0.0, 0.2: 10.0, math.inf: 10.0}
    assert quantile(0.5, buckets) == pytest.approx(0.15)
    assert quantile(0.99, buckets) == pytest.approx(0.199)


def test_quantile_in_the_inf_bucket_reports_the_highest_finite_bound() -> None:
    assert quantile(0.99, {0.1: 1.0, 0.5: 1.0, math.inf: 10.0}) == 0.5


def test_quantile_without_observations_is_none() -> None:
    assert quantile(0.5, {0.1: 0.0, math.inf: 0.0}) is None
    assert quantile(0.5, {}) is None


def test_history_computes_rates_between_samples() -> None:
    metrics = Metrics(process_collectors=False)
    history = LiveHistory()
    history.sample(metrics, now=100.0)
    for seconds in (0.003, 0.004, 0.004, 0.2):
        metrics.observe_request(model="digits", version="1", endpoint="predict", code=200, seconds=seconds)
    metrics.observe_request(model="digits", version="1", endpoint="predict", code=400, seconds=0.001)
    metrics.batch_size.labels("digits", "1").observe(4)
    metrics.batch_size.labels("digits", "1").observe(1)
    metrics.queue_depth.labels("digits", "1").inc(3)
    metrics.generated_tokens.labels("gpt", "2").inc(50)
    history.sample(metrics, now=102.0)

    body = history.to_json(SERVED, now=102.0)

    digits = figures(body, "digits")
    assert digits["series"]["t"] == [0.0]
    assert digits["series"]["rps"] == [2.5]
    assert digits["series"]["error_rps"] == [0.5]
    assert 2.5 <= digits["series"]["p50_ms"][0] <= 5.0  # the 2.5-5 ms bucket holds the median
    assert 100.0 <= digits["series"]["p99_ms"][0] <= 250.0
    assert digits["series"]["batch"] == [2.5]
    assert digits["series"]["queue"] == [3.0]
    assert digits["totals"] == {"requests": 5, "errors": 1, "tokens": 0}
    assert digits["current"]["rps"] == 2.5
    gpt = figures(body, "gpt")
    assert gpt["series"]["tps"] == [25.0]
    assert gpt["series"]["p50_ms"] == [None]
    assert gpt["series"]["batch"] == [None]
    assert body["totals"] == {"requests": 5, "errors": 1, "tokens": 50}


def test_history_lists_served_models_before_any_traffic() -> None:
    history = LiveHistory()
    history.sample(Metrics(process_collectors=False), now=1.0)
    body = history.to_json(SERVED, now=1.0)
    assert [(m["name"], m["version"], m["task"]) for m in body["models"]] == [
        ("digits", "1", "image-classification"),
        ("gpt", "2", "text-generation"),
    ]
    assert figures(body, "digits")["series"]["rps"] == []
    assert figures(body, "digits")["current"]["rps"] is None


def test_requests_naming_no_model_are_left_out() -> None:
    metrics = Metrics(process_collectors=False)
    metrics.observe_request(model="", version="", endpoint="ui", code=200, seconds=0.001)
    metrics.observe_request(model="digits", version="1", endpoint="predict", code=200, seconds=0.001)
    history = LiveHistory()
    history.sample(metrics, now=1.0)
    body = history.to_json(SERVED, now=1.0)
    assert [m["name"] for m in body["models"]] == ["digits", "gpt"]
    assert body["totals"]["requests"] == 1


def test_polls_closer_than_the_minimum_interval_reuse_the_last_sample() -> None:
    metrics = Metrics(process_collectors=False)
    history = LiveHistory(min_interval_s=0.5)
    for now in (10.0, 10.2, 10.4, 10.6):
        history.sample(metrics, now=now)
    assert figures(history.to_json(SERVED, now=10.6), "digits")["series"]["t"] == [0.0]


def test_samples_older_than_the_window_are_dropped() -> None:
    metrics = Metrics(process_collectors=False)
    history = LiveHistory(history_s=10.0, min_interval_s=1.0)
    for second in range(30):
        history.sample(metrics, now=float(second))
    times = figures(history.to_json(SERVED, now=29.0), "digits")["series"]["t"]
    assert times[0] >= -10.0 and times[-1] == 0.0
    assert len(times) == 11  # intervals ending at -10, -9, ..., 0 s


def test_current_figures_average_over_the_last_ten_seconds() -> None:
    metrics = Metrics(process_collectors=False)
    history = LiveHistory(min_interval_s=1.0)
    for second in range(20):
        if second == 15:
            for _ in range(20):
                metrics.observe_request(model="digits", version="1", endpoint="predict", code=200, seconds=0.01)
        history.sample(metrics, now=float(second))
    digits = figures(history.to_json(SERVED, now=19.0), "digits")
    assert digits["series"]["rps"][-1] == 0.0
    assert digits["current"]["rps"] == pytest.approx(20 / 10)


def tiny_app(tmp_path: Path, enabled: bool) -> FastAPI:
    app = FastAPI()
    app.state.metrics = Metrics(process_collectors=False)
    app.state.repository = ModelRepository(Settings(repository=tmp_path))
    app.include_router(create_router(enabled=enabled))
    return app


def test_router_serves_the_page_and_its_files(tmp_path: Path) -> None:
    with TestClient(tiny_app(tmp_path, enabled=True)) as client:
        page = client.get("/")
        assert page.status_code == 200 and "<title>nnserve</title>" in page.text
        script = client.get("/ui/static/app.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        assert client.get("/ui/static/style.css").headers["content-type"].startswith("text/css")
        assert client.get("/ui/static/../api/ui.py").status_code == 404
        stats = client.get("/ui/stats").json()
        assert stats["models"] == [] and stats["totals"]["requests"] == 0


def test_disabled_router_serves_nothing(tmp_path: Path) -> None:
    assert create_router(enabled=False).routes == []
    with TestClient(tiny_app(tmp_path, enabled=False)) as client:
        assert client.get("/").status_code == 404
        assert client.get("/ui/stats").status_code == 404
