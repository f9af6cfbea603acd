"""The Grafana dashboard and the alert rules query only what a live nnserve server exposes.

The server (the CPU image's entry command, see conftest) gets a little of every kind of traffic the
bundled models take; then each PromQL expression's metric names are checked against its /metrics, and
a real Prometheus scrapes the server and evaluates every expression, so label mistakes and syntax
errors in the dashboard (which promtool never sees) fail here too.
"""

from __future__ import annotations

import base64
import io
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from image_process import DEPLOY
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from promql_names import (
    Expression,
    dashboard_expressions,
    label_names,
    metric_names,
    rule_expressions,
    with_grafana_variables,
)
from testkit.prometheus import Prometheus, running_prometheus
from testkit.server import Server

from service.schema.config import ModelConfig, list_versions, load_config

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "nnserve.json"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
EXPRESSIONS = dashboard_expressions(DASHBOARD) + rule_expressions(ALERTS)
ALLOWED_LABELS = {"model", "version", "endpoint", "code", "protocol", "le", "job"}
"""The label contract with service/metrics.py (plus le for buckets and job for Prometheus' own `up`)."""
PROMETHEUS_GENERATED = {"up"}
"""Series Prometheus writes for every target itself; no exporter exposes them."""
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


@dataclass(frozen=True)
class Scrape:
    declared: set[str]
    """Every series name the exposition declares, observed or not (histogram suffixes expanded)."""
    sampled: set[str]
    """Series names with at least one sample: what queries can return data for."""
    traffic: dict[str, int]
    """Request description -> HTTP status, for failure messages."""


def _png(width: int, height: int) -> str:
    picture = Image.new("L", (width, height), color=0)
    for i in range(min(width, height)):
        picture.putpixel((i, i), 255)  # a stroke, so it is not a blank image
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _tensor(spec: dict[str, Any]) -> dict[str, Any]:
    """A small valid tensor for one input of a model's v2 metadata: batch 1, other free axes 8."""
    shape = [1 if i == 0 and d == -1 else 8 if d == -1 else d for i, d in enumerate(spec["shape"])]
    count = 1
    for d in shape:
        count *= d
    value: Any = 1 if spec["datatype"].startswith(("INT", "UINT")) else 0.5
    if spec["datatype"] == "BOOL":
        value = True
    elif spec["datatype"] == "BYTES":
        value = "free entry to win cash"
    return {"name": spec["name"], "shape": shape, "datatype": spec["datatype"], "data": [value] * count}


def _models(repository: Path) -> dict[str, ModelConfig]:
    return {
        path.name: load_config(path)
        for path in sorted(repository.iterdir())
        if path.is_dir() and not path.name.startswith(".") and list_versions(path)
    }


def _send_traffic(client: httpx.Client, repository: Path) -> dict[str, int]:
    """One request per endpoint each bundled model serves, plus a bad request and an unknown model."""
    statuses: dict[str, int] = {}

    def post(label: str, path: str, body: Any) -> None:
        statuses[label] = client.post(path, content=json.dumps(body)).status_code

    for name, config in _models(repository).items():
        if config.task == "text-generation":
            body = {"text_input": "ROMEO:", "max_tokens": 4, "temperature": 0, "seed": 0}
            post(f"{name} generate", f"/v2/models/{name}/generate", body)
            continue
        metadata = client.get(f"/v2/models/{name}")
        statuses[f"{name} metadata"] = metadata.status_code
        if metadata.status_code == 200:
            inputs = [_tensor(spec) for spec in metadata.json()["inputs"]]
            post(f"{name} v2 infer", f"/v2/models/{name}/infer", {"inputs": inputs})
        if config.image is not None:
            instances: list[Any] = [{"b64": _png(config.image.width, config.image.height)}]
            post(f"{name} :predict", f"/v1/models/{name}:predict", {"instances": instances})
        elif config.text is not None:
            post(
                f"{name} :predict", f"/v1/models/{name}:predict", {"instances": ["WINNER! claim your prize"]}
            )
        post(f"{name} bad infer", f"/v2/models/{name}/infer", {"inputs": "not a list"})
    statuses["unknown model"] = client.get("/v2/models/no-such-model").status_code
    return statuses


def _parse(text: str) -> tuple[set[str], set[str]]:
    declared: set[str] = set()
    sampled: set[str] = set()
    for family in text_string_to_metric_families(text):
        declared.add(family.name)
        declared.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
        for sample in family.samples:
            declared.add(sample.name)
            sampled.add(sample.name)
    return declared, sampled


@pytest.fixture(scope="module")
def scrape(image_server: Server) -> Scrape:
    repository = Path(image_server.env["NNSERVE_REPOSITORY"])
    with httpx.Client(base_url=image_server.url, timeout=60.0) as client:
        traffic = _send_traffic(client, repository)
        metrics = client.get("/metrics")
    assert metrics.status_code == 200, metrics.text
    declared, sampled = _parse(metrics.text)
    return Scrape(declared, sampled, traffic)


def test_traffic_gets_answers_from_every_bundled_model(scrape: Scrape) -> None:
    good = {k: v for k, v in scrape.traffic.items() if not k.endswith(("bad infer", "unknown model"))}
    assert good, "no bundled model to send traffic to"
    assert {k: v for k, v in good.items() if v != 200} == {}, scrape.traffic
    assert 400 <= scrape.traffic["unknown model"] < 500
    assert all(400 <= v < 500 for k, v in scrape.traffic.items() if k.endswith("bad infer")), scrape.traffic


@pytest.mark.parametrize("expression", EXPRESSIONS, ids=[e.source for e in EXPRESSIONS])
def test_expression_refers_only_to_exposed_metrics(expression: Expression, scrape: Scrape) -> None:
    unknown = metric_names(expression.promql) - scrape.declared - PROMETHEUS_GENERATED
    assert unknown == set(), f"{expression.source}: not exposed by nnserve: {sorted(unknown)}"


@pytest.mark.parametrize("expression", EXPRESSIONS, ids=[e.source for e in EXPRESSIONS])
def test_expression_uses_only_contract_labels(expression: Expression) -> None:
    assert metric_names(expression.promql), f"{expression.source}: no metric found in {expression.promql!r}"
    extra = label_names(expression.promql) - ALLOWED_LABELS
    assert extra == set(), f"{expression.source}: labels outside the metrics contract: {sorted(extra)}"


def test_dashboard_has_the_required_panels() -> None:
    titles = " | ".join(e.source.lower() for e in dashboard_expressions(DASHBOARD))
    for wanted in ("request rate", "error", "p50 / p95 / p99", "queue time", "batch size", "queue depth",
                   "tokens/s", "time to first token", "dashboard variable: model"):  # fmt: skip
        assert wanted in titles, f"no dashboard panel for {wanted!r}"
    latency = [e.promql for e in dashboard_expressions(DASHBOARD) if "Request latency" in e.source]
    assert [
        q for q in ("0.5", "0.95", "0.99") if not any(f"histogram_quantile({q}," in e for e in latency)
    ] == []


def test_dashboard_uses_the_provisioned_datasource() -> None:
    uid = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    dashboard = json.loads(DASHBOARD.read_text())
    used = {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p}
    used |= {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])}
    used |= {v["datasource"]["uid"] for v in dashboard["templating"]["list"]}
    assert used == {uid}


# --- a real Prometheus scraping the live server --------------------------------------------------


@pytest.fixture(scope="module")
def prometheus(scrape: Scrape, image_server: Server) -> Iterator[Prometheus]:
    with tempfile.TemporaryDirectory(prefix="nnserve-prometheus-") as tmp:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [{"job_name": "nnserve", "static_configs": [{"targets": [image_server.host_port]}]}],
        }
        with running_prometheus(config, Path(tmp), args=["--log.level=warn"]) as server:
            # rate() needs two samples inside its window; three scrapes leave no doubt.
            scrapes = 'count_over_time(up{job="nnserve"}[1m]) >= 3'
            server.wait_for("three scrapes", lambda: server.query(scrapes)["data"]["result"], 60)
            yield server


@pytest.mark.parametrize("expression", EXPRESSIONS, ids=[e.source for e in EXPRESSIONS])
def test_expression_evaluates_on_prometheus_scraping_the_server(
    expression: Expression, scrape: Scrape, prometheus: Prometheus
) -> None:
    answer = prometheus.query(with_grafana_variables(expression.promql))
    assert answer["status"] == "success", f"{expression.source}: {answer.get('error')}"
    if expression.source.startswith("dashboard"):
        # After traffic to every bundled model, every panel must show something.
        unsampled = sorted(metric_names(expression.promql) - scrape.sampled)
        assert answer["data"]["result"], f"{expression.source}: no data; series without samples: {unsampled}"


def test_alert_rules_evaluate_without_errors(prometheus: Prometheus) -> None:
    with httpx.Client(base_url=prometheus.url, timeout=10.0) as client:

        def rules() -> list[dict[str, Any]]:
            groups = client.get("/api/v1/rules").json()["data"]["groups"]
            return [rule for group in groups for rule in group["rules"]]

        def evaluated() -> bool:
            found = rules()
            return bool(found) and all(r["health"] != "unknown" for r in found)

        prometheus.wait_for("rules evaluated", evaluated, 30)
        failing = {r["name"]: r.get("lastError") for r in rules() if r["health"] != "ok"}
    assert failing == {}
