"""Server-sent events for the generation routes, as PROTOCOLS.md section 7 has them.

`data: <json>\\n\\n` per event, flushed at once; no `event:` or `id:` lines (they break openai-python);
`: ping` comments while nothing else is sent, so proxies keep the connection open.

Why a response class of its own: a sequence must stop when its client goes away. uvicorn (ASGI 2.3)
silently drops writes to a closed connection, so the response listens for `http.disconnect` while it
streams (the request middleware may also cancel it then), and `on_close` (cancel the sequences, release
the model) runs exactly once however the response ends: finished, failed, cancelled or abandoned, even
before the first event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from typing import Any

import orjson
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

PING = b": ping\n\n"
PING_INTERVAL_S = 15.0
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""No caching, and no buffering by nginx-style proxies: each event must reach the client at once."""


def sse_data(payload: Any) -> bytes:
    """One event: `data: {json}` and the blank line that dispatches it."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class EventStreamResponse(StreamingResponse):
    """`text/event-stream; charset=utf-8` from an async generator of encoded events (see `sse_data`)."""

    def __init__(
        self,
        events: AsyncGenerator[bytes, None],
        on_close: Callable[[], None],
        *,
        ping_interval_s: float = PING_INTERVAL_S,
    ) -> None:
        super().__init__(events, headers=HEADERS, media_type="text/event-stream")
        self._events = events
        self._on_close = on_close
        self._ping_interval_s = ping_interval_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sending = asyncio.ensure_future(self._stream(send))
        watching = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait((sending, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sending, watching):
                task.cancel()
            # Before any await: a second cancellation arriving during the wait below must not skip it.
            self._on_close()
            await asyncio.gather(sending, watching, return_exceptions=True)
        if not sending.cancelled() and (error := sending.exception()) is not None:
            raise error

    async def _stream(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        upcoming = asyncio.ensure_future(_next(self._events))
        try:
            while True:
                done, _ = await asyncio.wait((upcoming,), timeout=self._ping_interval_s)
                if not done:
                    await send({"type": "http.response.body", "body": PING, "more_body": True})
                    continue
                if (event := upcoming.result()) is None:
                    break
                await send({"type": "http.response.body", "body": event, "more_body": True})
                upcoming = asyncio.ensure_future(_next(self._events))
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the connection broke while writing: the client is gone, as with http.disconnect
        finally:
            upcoming.cancel()
            await asyncio.gather(upcoming, return_exceptions=True)
            await self._events.aclose()


async def _next(events: AsyncGenerator[bytes, None]) -> bytes | None:
    """The next event, or None at the end."""
    try:
        return await anext(events)
    except StopAsyncIteration:
        return None


async def _disconnected(receive: Receive) -> None:
    """Returns when the client closes the connection (the request body was read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass
