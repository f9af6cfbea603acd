"""A real nnserve process on a free loopback port, polled (never slept through) until start-up is over,
and the few reads tests make of it.

Start-up is over once `/v2/health/ready` answers 200, or 503 for a reason other than loading: a
repository with a broken model is never ready, by design, and tests of that state need the server too.
Callers that need every model ready say `require_ready=True` and fail at once, with the log, otherwise.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from .processes import free_port, launched, log_excerpt, wait_for

START_TIMEOUT_S = 90.0
"""Loading a repository's models on a busy two-core CI machine; the poll returns as soon as it is done."""
LOADING = "models are loading"
"""The readiness reason nnserve gives while start-up loading is still going on."""
PINNED_ENV = {"NNSERVE_HOST": "127.0.0.1", "NNSERVE_LOG_LEVEL": "info", "NNSERVE_LOG_FORMAT": "json"}
"""Settings tests rely on (loopback only, info events as JSON lines to read back), whatever this shell has."""


@dataclass(frozen=True)
class Server:
    url: str
    port: int
    process: Popen[bytes]
    log: Path
    command: list[str]
    env: dict[str, str]
    """The environment the process was started with."""

    host = "127.0.0.1"
    """Where it listens: loopback only."""

    @property
    def host_port(self) -> str:
        """`127.0.0.1:PORT`, as tritonclient wants it."""
        return f"{self.host}:{self.port}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def log_excerpt(self) -> str:
        return log_excerpt(self.log)

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

    def wait_for(self, what: str, condition: Callable[[], object], timeout_s: float = 30.0) -> None:
        """Poll `condition()` until it is true; fail naming `what` after `timeout_s` or if the server exits."""
        wait_for(what, condition, timeout_s, process=self.process, log=self.log)


@contextmanager
def serving(
    command: Sequence[str],
    log: Path,
    *,
    port: int,
    env: Mapping[str, str],
    cwd: Path | None = None,
    require_ready: bool = False,
    timeout_s: float = START_TIMEOUT_S,
) -> Iterator[Server]:
    """`command`, which serves nnserve on `port`, running until the block ends; yielded once start-up is over."""
    with launched(command, log, env=env, cwd=cwd) as process:
        server = Server(f"http://{Server.host}:{port}", port, process, log, list(command), dict(env))
        server.wait_for("start-up loading to end", lambda: _loading_ended(server.url), timeout_s)
        if require_ready:
            ready = httpx.get(f"{server.url}/v2/health/ready", timeout=5.0)
            assert ready.status_code == 200, f"not ready: {ready.text}; log {log}:\n{server.log_excerpt()}"
        yield server


@contextmanager
def running_server(
    repository: Path,
    log: Path,
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    require_ready: bool = False,
    timeout_s: float = START_TIMEOUT_S,
) -> Iterator[Server]:
    """`python -m service serve` on `repository` with extra CLI `args`; its environment is this one with
    PINNED_ENV, then `env`, on top."""
    port = free_port()
    command = [sys.executable, "-m", "service", "serve", "--repository", str(repository), "--port", str(port)]
    with serving(
        [*command, *args],
        log,
        port=port,
        env={**os.environ, **PINNED_ENV, **(env or {})},
        require_ready=require_ready,
        timeout_s=timeout_s,
    ) as server:
        yield server


def _loading_ended(url: str) -> bool:
    response = httpx.get(f"{url}/v2/health/ready", timeout=2.0)
    return response.status_code == 200 or response.json().get("reason") != LOADING
