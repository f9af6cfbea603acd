"""Clean-up that must happen however a generation request ends (issue 16, item 10): the event stream's
close callback under repeated cancellation, the completions route's lease on an unexpected error, and a
closed version's engine, dropped when the version closes rather than at the next generation request."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from testkit.server import Server

from service.api.sse import EventStreamResponse, sse_data
from service.app import create_app
from service.generation.engine import GenerationEngine
from service.settings import Settings

from .generation_client import MODEL, generate

MODELS = Path(__file__).resolve().parents[2] / "models"
SCOPE = {"type": "http", "asgi": {"spec_version": "2.3"}}
LOG_TIMEOUT_S = 10.0


async def _close_under_double_cancel() -> list[int]:
    """Cancel a streaming response, then cancel it again while it waits for its tasks to end."""
    first_sent = asyncio.Event()

    async def events() -> AsyncGenerator[bytes, None]:
        try:
            yield sse_data({"n": 1})
            await asyncio.Event().wait()
            yield sse_data({"n": 2})
        finally:
            await asyncio.sleep(0.2)  # slow clean-up: the response is still waiting for it when cancelled again

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message.get("body"):
            first_sent.set()

    closed: list[int] = []
    response = EventStreamResponse(events(), lambda: closed.append(1))
    task = asyncio.ensure_future(response(SCOPE, receive, send))
    await first_sent.wait()
    task.cancel()
    await asyncio.sleep(0.05)  # inside the response's clean-up now, waiting for the generator's
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return closed


def test_event_stream_close_runs_when_cancelled_twice() -> None:
    assert asyncio.run(_close_under_double_cancel()) == [1]


def test_completions_release_the_lease_on_an_unexpected_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / MODEL).symlink_to(MODELS / MODEL, target_is_directory=True)

    def broken_submit(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a fault the server did not foresee")

    app = create_app(Settings(repository=tmp_path))
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(200):
            if client.get("/v2/health/ready").status_code == 200:
                break
            time.sleep(0.05)  # polling interval while start-up loading runs
        served = app.state.repository.lookup(MODEL, None)
        monkeypatch.setattr(GenerationEngine, "submit", broken_submit)
        for stream in (False, True):
            body = {"model": MODEL, "prompt": "O", "max_tokens": 2, "stream": stream}
            answer = client.post("/v1/completions", json=body)
            assert answer.status_code == 500
        assert served.in_flight == 0


def test_closed_version_engine_is_dropped_without_another_generation(server: Server, client: httpx.Client) -> None:
    def closed_engines() -> int:
        return len(re.findall(r'"generation_engine_closed"', server.log.read_text()))

    generate(client, max_tokens=2)  # the served version now has an engine
    before = closed_engines()
    assert client.post(f"/v2/repository/models/{MODEL}/load").status_code == 200
    deadline = time.monotonic() + LOG_TIMEOUT_S
    while closed_engines() == before:  # no generation request after the reload
        assert time.monotonic() < deadline, "the retired version's engine lingered"
        time.sleep(0.02)  # polling interval
