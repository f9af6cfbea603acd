"""A real `python -m service serve` on a free loopback port, and the few reads the tests make of it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

START_TIMEOUT_S = 90.0
POLL_INTERVAL_S = 0.02


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    host: str
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def statistics(self, model: str) -> dict[str, Any]:
        """The model's one version's entry of the v2 statistics extension."""
        response = httpx.get(f"{self.url}/v2/models/{model}/stats", timeout=10)
        response.raise_for_status()
        (entry,) = response.json()["model_stats"]
        assert isinstance(entry, dict)
        return entry

    def metric(self, name: str, **labels: str) -> float:
        """One sample of GET /metrics (0 when the series does not exist yet)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0

    def wait_for(self, what: str, condition: Any, timeout_s: float = 30.0) -> None:
        """Poll `condition()` until it is true; fail naming `what` after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
            time.sleep(POLL_INTERVAL_S)  # the polling interval, not a wait for the condition


def _loaded(url: str) -> bool:
    try:
        response = httpx.get(f"{url}/v2/health/ready", timeout=2.0)
    except httpx.TransportError:
        return False
    return response.status_code == 200 or response.json().get("reason") != "models are loading"


@contextmanager
def running_server(repository: Path, log: Path) -> Iterator[Server]:
    port = free_port()
    command = [sys.executable, "-m", "service", "serve", "--repository", str(repository), "--port", str(port)]
    environment = {**os.environ, "NNSERVE_LOG_LEVEL": "info", "NNSERVE_LOG_FORMAT": "json"}
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=environment)
    server = Server("127.0.0.1", port, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _loaded(server.url):
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{server.log_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not loaded after {START_TIMEOUT_S}s:\n{server.log_text()}")
            time.sleep(POLL_INTERVAL_S)  # polling interval, not a wait for readiness
        ready = httpx.get(f"{server.url}/v2/health/ready", timeout=5)
        assert ready.status_code == 200, ready.text
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
