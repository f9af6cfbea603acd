"""deploy/prometheus: promtool accepts the config and the rules, and the alerts fire as specified."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from image_process import DEPLOY

PROMETHEUS_DIR = DEPLOY / "prometheus"
ALERTS_TEST = Path(__file__).with_name("alerts_test.yml")


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`; .ci/run installs it)")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_config_passes() -> None:
    result = _promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules_passes() -> None:
    result = _promtool("check", "rules", str(PROMETHEUS_DIR / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_fire_on_their_unit_test_series() -> None:
    result = _promtool("test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_cover_errors_latency_queue_readiness_and_targets() -> None:
    rules = [
        r for g in yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"] for r in g["rules"]
    ]
    by_name = {r["alert"]: r for r in rules}
    assert {
        "NnserveHighErrorRate", "NnserveLatencyP99AboveSLO", "NnserveQueueNearFull",
        "NnserveModelNotReady", "NnserveTargetDown",
    } <= by_name.keys()  # fmt: skip
    for name, rule in by_name.items():
        assert rule.get("for"), f"{name} fires on one bad evaluation; give it a `for`"
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name
    unit_tested = {
        t["alertname"]
        for case in yaml.safe_load(ALERTS_TEST.read_text())["tests"]
        for t in case["alert_rule_test"]
    }
    assert unit_tested == by_name.keys(), (
        f"alerts without a promtool unit test: {by_name.keys() - unit_tested}"
    )


def test_prometheus_scrapes_nnserve_services_and_loads_the_rules() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    targets = {
        job["job_name"]: {name for sd in job.get("dns_sd_configs", []) for name in sd["names"]}
        for job in config["scrape_configs"]
    }
    assert targets == {"nnserve": {"nnserve"}, "nnserve-gpu": {"nnserve-gpu"}}
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in config["scrape_configs"])
