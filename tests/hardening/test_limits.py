"""The limits that depend on load rather than on one request: queue depth (503 with Retry-After, refused
at once) and the request deadline (504 for a request still queued when it passes; it never runs)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from .repository import slow_request
from .server import Server, wait_for

HOLD_STEPS = 400_000
"""One run of well over half a second (about 1.5 us a step), holding the model's only instance."""


def _post(server: Server, steps: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/models/narrow/infer", json=slow_request(steps), headers=headers, timeout=60)


def _queued(server: Server) -> float:
    return server.metric("nnserve_queue_depth", model="narrow")


def test_full_queue_refuses_at_once_with_retry_after(server: Server) -> None:
    """`narrow` runs one request at a time and queues at most 2 more: the rest are refused, not queued."""
    with ThreadPoolExecutor(6) as pool:
        holder = pool.submit(_post, server, HOLD_STEPS)
        wait_for("the holding run to start", lambda: server.metric("nnserve_requests_in_flight") >= 2)
        queued = [pool.submit(_post, server, 1) for _ in range(2)]
        wait_for("two requests queued", lambda: _queued(server) == 2)
        started = time.perf_counter()
        refused = [_post(server, 1) for _ in range(3)]
        elapsed = time.perf_counter() - started
        answered = [holder.result(), *(f.result() for f in queued)]
    for response in refused:
        assert response.status_code == 503, response.text
        assert int(response.headers["retry-after"]) >= 1
        assert "queue full" in response.json()["error"]
    assert elapsed < 1.0, "a full queue must refuse at once, not after waiting"
    assert [r.status_code for r in answered] == [200, 200, 200]


def test_request_past_its_deadline_in_the_queue_gets_504_and_never_runs(server: Server) -> None:
    with ThreadPoolExecutor(2) as pool:
        holder = pool.submit(_post, server, HOLD_STEPS)
        wait_for("the holding run to start", lambda: server.metric("nnserve_requests_in_flight") >= 2)
        late = _post(server, 1, headers={"X-Request-Timeout-Ms": "50"})
        assert holder.result().status_code == 200
    assert late.status_code == 504, late.text
    assert "deadline" in late.json()["error"]
    dropped = server.metric("nnserve_dropped_requests_total", model="narrow", reason="deadline")
    assert dropped >= 1
