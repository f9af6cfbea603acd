"""The server-sent events response on its own: keep-alive pings, and clean-up when the client leaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from service.api.sse import PING, EventStreamResponse, sse_data

pytestmark = pytest.mark.anyio

SCOPE = {"type": "http", "asgi": {"spec_version": "2.3"}}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Client:
    """The ASGI side of one connection: records what is sent; leaves when `leave` is set."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.leave = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.leave.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]


async def test_event_stream_pings_while_no_event_is_ready() -> None:
    idle = asyncio.Event()

    async def events() -> AsyncGenerator[bytes, None]:
        yield sse_data({"n": 1})
        await idle.wait()
        yield sse_data({"n": 2})

    client = Client()
    closed: list[int] = []
    response = EventStreamResponse(events(), lambda: closed.append(1), ping_interval_s=0.01)
    task = asyncio.ensure_future(response(SCOPE, client.receive, client.send))
    while PING not in client.bodies:
        await asyncio.sleep(0.005)  # polling interval
    idle.set()
    await task
    start = client.sent[0]
    assert start["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in start["headers"]
    bodies = client.bodies
    assert bodies[0] == b'data: {"n":1}\n\n'
    assert set(bodies[1:-2]) == {PING}
    assert bodies[-2:] == [b'data: {"n":2}\n\n', b""]
    assert client.sent[-1]["more_body"] is False
    assert closed == [1]


async def test_event_stream_stops_events_and_closes_once_when_client_leaves() -> None:
    finished: list[str] = []

    async def events() -> AsyncGenerator[bytes, None]:
        try:
            yield sse_data({"n": 1})
            await asyncio.Event().wait()  # a sequence that would run for long
            yield sse_data({"n": 2})
        finally:
            finished.append("events closed")

    client = Client()
    closed: list[int] = []
    response = EventStreamResponse(events(), lambda: closed.append(1))
    task = asyncio.ensure_future(response(SCOPE, client.receive, client.send))
    while not client.bodies:
        await asyncio.sleep(0.005)  # polling interval
    client.leave.set()
    await task
    assert client.bodies == [b'data: {"n":1}\n\n']
    assert finished == ["events closed"]
    assert closed == [1]


async def test_event_stream_raises_failure_of_events_after_closing() -> None:
    async def events() -> AsyncGenerator[bytes, None]:
        yield sse_data({"n": 1})
        raise RuntimeError("broken generator")

    client = Client()
    closed: list[int] = []
    response = EventStreamResponse(events(), lambda: closed.append(1))
    with pytest.raises(RuntimeError, match="broken generator"):
        await response(SCOPE, client.receive, client.send)
    assert closed == [1]
