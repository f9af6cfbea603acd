"""Graceful shutdown: on SIGTERM readiness turns false at once, new connections stop after the drain delay,
every accepted request (queued, running, streaming) gets its whole answer, and the process exits 0."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from .repository import copy_bundled, slow_request, write_slow
from .server import Server, serving, wait_for

STREAMS, GENERATIONS, INFERS = 20, 10, 20
TOKENS = 128
SLOW_STEPS = 50_000
"""Each slow run takes tens of ms (about 1.5 us a step); 20 of them one at a time outlast the drain delay."""
LONG_STEPS = 2_000_000
"""A run of a few seconds."""
DRAIN_DELAY_S = 0.5


@pytest.fixture
def drain_server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "models"
    root.mkdir()
    copy_bundled(root, "tiny-gpt")
    write_slow(root)
    env = {"NNSERVE_SHUTDOWN_DELAY_S": str(DRAIN_DELAY_S), "NNSERVE_SHUTDOWN_GRACE_S": "60"}
    with serving(root.resolve(), tmp_path / "server.log", env=env) as srv:
        yield srv


def _accepted(server: Server) -> int:
    """Requests the app has taken (in flight or answered), from one scrape so none is counted twice:
    a request leaves the in-flight gauge and enters the answered counter in the same step."""
    taken = 0.0
    for name, labels, value in server.samples():
        if name == "nnserve_requests_in_flight":
            taken += value - 1  # less this scrape
        elif name == "nnserve_requests_total" and labels.get("model") in ("tiny-gpt", "slow"):
            taken += value
    return int(taken)


def _stream(url: str) -> dict[str, Any]:
    """The last event of a whole generate_stream, plus the joined text."""
    body = {"text_input": "ROMEO:\n", "max_tokens": TOKENS, "temperature": 0}
    events = []
    with httpx.stream("POST", f"{url}/v2/models/tiny-gpt/generate_stream", json=body, timeout=120) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(orjson.loads(line[6:]))
    last = events[-1]
    return {**last, "text": "".join(e["text_output"] for e in events)}


def _generate(url: str) -> httpx.Response:
    body = {"text_input": "ROMEO:\n", "max_tokens": TOKENS, "temperature": 0}
    return httpx.post(f"{url}/v2/models/tiny-gpt/generate", json=body, timeout=120)


def _infer(url: str) -> httpx.Response:
    return httpx.post(f"{url}/v2/models/slow/infer", json=slow_request(SLOW_STEPS), timeout=120)


def test_sigterm_under_50_concurrent_requests_answers_all_and_exits_0(drain_server: Server) -> None:
    server = drain_server
    url = server.url
    with ThreadPoolExecutor(STREAMS + GENERATIONS + INFERS) as pool:
        streams = [pool.submit(_stream, url) for _ in range(STREAMS)]
        generations = [pool.submit(_generate, url) for _ in range(GENERATIONS)]
        infers = [pool.submit(_infer, url) for _ in range(INFERS)]
        everything: list[Future[Any]] = [*streams, *generations, *infers]
        wait_for("all 50 requests accepted", lambda: _accepted(server) >= len(everything))
        server.process.send_signal(signal.SIGTERM)

        ready = httpx.get(f"{url}/v2/health/ready", timeout=5)
        assert ready.status_code == 503 and ready.json()["reason"] == "shutting down", ready.text
        assert httpx.get(f"{url}/v2/health/live", timeout=5).status_code == 200, "live while draining"

        def refused() -> bool:
            try:
                httpx.get(f"{url}/v2/health/live", timeout=1)
            except httpx.TransportError:
                return True
            return False

        wait_for("new connections refused after the drain delay", refused, timeout_s=30)
        results = [f.result(timeout=120) for f in everything]

    for result in results[:STREAMS]:
        assert result["done"] is True and "error" not in result, result
        assert result["details"]["completion_tokens"] >= 1 and result["text"]
    for response in results[STREAMS : STREAMS + GENERATIONS]:
        assert response.status_code == 200, response.text
        assert response.json()["details"]["completion_tokens"] >= 1
    for response in results[STREAMS + GENERATIONS :]:
        assert response.status_code == 200, response.text
        assert len(response.json()["outputs"][0]["data"]) == 128
    assert server.process.wait(timeout=60) == 0, server.log_text()[-3000:]
    (started,) = [e for e in server.log_events() if e["event"] == "shutdown_started"]
    assert started["in_flight"] >= 1, "nothing was in flight when the drain began"


def test_sigterm_when_idle_exits_0_promptly(tmp_path: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    write_slow(root)
    with serving(root.resolve(), tmp_path / "server.log") as server:
        started = time.monotonic()
        assert server.terminate() == 0, server.log_text()[-3000:]
        assert time.monotonic() - started < 10


def test_requests_past_the_grace_period_are_cut_and_the_server_still_exits_0(tmp_path: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    write_slow(root)
    env = {"NNSERVE_SHUTDOWN_GRACE_S": "1"}
    with serving(root.resolve(), tmp_path / "server.log", env=env) as server, ThreadPoolExecutor(1) as pool:
        # One run of a few seconds: far past the grace period.
        running = pool.submit(httpx.post, f"{server.url}/v2/models/slow/infer", json=slow_request(LONG_STEPS),
                              timeout=60)  # fmt: skip
        wait_for("the long run to start", lambda: server.metric("nnserve_requests_in_flight") >= 2)
        started = time.monotonic()
        assert server.terminate() == 0, server.log_text()[-3000:]
        assert time.monotonic() - started < 20
        try:
            cut = running.result(timeout=30)
        except httpx.TransportError:
            return  # the connection was closed without an answer
        assert cut.status_code >= 500, cut.text
