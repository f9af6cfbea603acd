"""A real Prometheus (Debian's package, as .ci/run installs it) on a free loopback port, for tests that
check what it scrapes from a test server and how it evaluates the repository's queries and rules."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .processes import free_port, launched, wait_for

READY_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.1
"""Prometheus scrapes and evaluates every second in these tests; polling faster gains nothing."""


@dataclass(frozen=True)
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def query(self, promql: str) -> dict[str, Any]:
        """The whole answer of an instant query (`status`, `data` or `error`), whatever its HTTP status."""
        body: dict[str, Any] = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10).json()
        return body

    def value(self, promql: str) -> float | None:
        """The single value of an instant query, or None while it has no result."""
        answer = self.query(promql)
        assert answer["status"] == "success", f"{promql}: {answer.get('error')}"
        result = answer["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, what: str, condition: Callable[[], object], timeout_s: float = READY_TIMEOUT_S) -> None:
        """Poll `condition()` until it is true; fail naming `what`, with Prometheus's log, otherwise."""
        wait_for(
            f"Prometheus: {what}", condition, timeout_s, process=self.process, log=self.log, interval_s=POLL_INTERVAL_S
        )


@contextmanager
def running_prometheus(config: dict[str, Any], workdir: Path, *, args: Sequence[str] = ()) -> Iterator[Prometheus]:
    """Prometheus with `config` (its files and data under `workdir`), ready, stopped when the block ends.

    Skips the test where no prometheus binary is installed.
    """
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("no prometheus binary: apt-get install prometheus (as .ci/run does)")
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    command = [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        *args,
    ]
    with launched(command, workdir / "prometheus.log") as process:
        prometheus = Prometheus(f"http://127.0.0.1:{port}", process, workdir / "prometheus.log")
        prometheus.wait_for("/-/ready", lambda: httpx.get(f"{prometheus.url}/-/ready", timeout=2).status_code == 200)
        yield prometheus
