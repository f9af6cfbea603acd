"""A real Prometheus (Debian's package, as .ci/run installs it) scrapes the real server with the
repository's own deploy/prometheus/prometheus.yml, targets rewritten to the test server, and its HTTP
API must then agree with the traffic sent."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from testkit.prometheus import Prometheus, running_prometheus
from testkit.server import Server

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
MODEL = "digits-prometheus"
"""A copy of digits-cnn that only this test sends requests to, so the counts are exact."""
REQUESTS = f'nnserve_requests_total{{model="{MODEL}",endpoint="predict",code="200"}}'
P50 = (
    "histogram_quantile(0.5, sum by (le) "
    f'(rate(nnserve_request_duration_seconds_bucket{{model="{MODEL}",endpoint="predict"}}[1m])))'
)


def prometheus_config(target: str) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with the nnserve job pointed at `target`, scraping every second."""
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text(encoding="utf-8"))
    config["global"] |= {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(DEPLOY / name) for name in config["rule_files"]]
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "nnserve"]
    del job["dns_sd_configs"]
    job["static_configs"] = [{"targets": [target]}]
    config["scrape_configs"] = [job]
    return config


@pytest.fixture
def prometheus(server: Server, tmp_path: Path) -> Iterator[Prometheus]:
    with running_prometheus(prometheus_config(server.host_port), tmp_path) as running:
        yield running


def test_prometheus_scrapes_request_counts_and_latency_quantile(server: Server, prometheus: Prometheus) -> None:
    body = {"instances": [[[0.0] * 8] * 8]}
    with httpx.Client(base_url=server.url, timeout=30) as client:

        def predict(count: int) -> None:
            for _ in range(count):
                assert client.post(f"/v1/models/{MODEL}:predict", json=body).status_code == 200

        predict(1)
        # A rate needs the series in two scrapes: let Prometheus see it before the rest of the traffic.
        prometheus.wait_for("the first request", lambda: prometheus.value(REQUESTS) == 1)
        predict(29)
    prometheus.wait_for("all 30 requests", lambda: prometheus.value(REQUESTS) == 30)
    prometheus.wait_for("a latency quantile", lambda: not math.isnan(prometheus.value(P50) or math.nan))
    p50 = prometheus.value(P50)
    assert p50 is not None and 0 < p50 < 1.0
    assert prometheus.value(f'nnserve_model_ready{{model="{MODEL}",version="1",provider="cpu"}}') == 1
    assert prometheus.value('up{job="nnserve"}') == 1
    rules = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert [group["name"] for group in rules] == ["nnserve"]
