"""A closed-loop HTTP/1.1 load generator small and fast enough to not measure itself.

N connections, each sending its next request as soon as the previous answer is in (a closed loop, so
offered load follows the server's speed). Requests are prebuilt bytes, responses are framed by
Content-Length or chunked encoding on a bare `asyncio.Protocol`, and the loop runs on uvloop: one
client core drives far more requests per second than httpx or aiohttp, which is the point, since a
client that saturates first reports its own limit as the server's.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass, field
from typing import cast

import uvloop


def build_request(host: str, port: int, path: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def parse_response(buffer: bytearray) -> tuple[int, bytes, int] | None:
    """(status, body, bytes consumed) for the first complete response in `buffer`, or None if partial."""
    header_end = buffer.find(b"\r\n\r\n")
    if header_end < 0:
        return None
    lines = bytes(buffer[:header_end]).lower().split(b"\r\n")
    status = int(lines[0][9:12])
    body_start = header_end + 4
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            return _parse_chunked(buffer, status, body_start)
    if len(buffer) < body_start + length:
        return None
    return status, bytes(buffer[body_start : body_start + length]), body_start + length


def _parse_chunked(buffer: bytearray, status: int, position: int) -> tuple[int, bytes, int] | None:
    body = bytearray()
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        chunk_start = line_end + 2
        if len(buffer) < chunk_start + size + 2:
            return None
        if size == 0:  # no trailers are sent by the servers we measure
            return status, bytes(body), chunk_start + 2
        body += buffer[chunk_start : chunk_start + size]
        position = chunk_start + size + 2


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is None:
            return
        parsed = parse_response(self._buffer)
        if parsed is not None:
            status, body, consumed = parsed
            del self._buffer[:consumed]
            waiter, self._waiter = self._waiter, None
            waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError(f"server closed the connection: {exc}"))

    def send(self, request: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self._transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


@dataclass
class LoadResult:
    """What one closed-loop run measured inside its window (warm-up excluded)."""

    concurrency: int
    seconds: float
    completed: int = 0
    errors: int = 0
    latencies_s: list[float] = field(default_factory=list)
    first_error: str = ""

    @property
    def throughput(self) -> float:
        return self.completed / self.seconds


async def closed_loop(
    host: str, port: int, requests: list[bytes], concurrency: int, warmup_s: float, duration_s: float
) -> LoadResult:
    """Drive `concurrency` connections for warm-up plus duration; count only answers inside the window.

    Throughput counts answers that arrive inside the window; latency keeps requests sent and answered
    inside it. Requests in flight when the window closes are awaited but not counted, so every
    connection ends idle and the server sees no aborted requests.
    """
    loop = asyncio.get_running_loop()
    connections = [(await loop.create_connection(_Connection, host, port))[1] for _ in range(concurrency)]
    result = LoadResult(concurrency=concurrency, seconds=duration_s)
    start = time.perf_counter()
    window_start, window_end = start + warmup_s, start + warmup_s + duration_s

    async def worker(index: int, connection: _Connection) -> None:
        turn = index
        while (sent := time.perf_counter()) < window_end:
            status, body = await connection.send(requests[turn % len(requests)])
            answered = time.perf_counter()
            turn += concurrency
            if window_start <= answered <= window_end:
                if status != 200:
                    result.errors += 1
                    result.first_error = result.first_error or f"HTTP {status}: {body[:300]!r}"
                    continue
                result.completed += 1
                if sent >= window_start:
                    result.latencies_s.append(answered - sent)

    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection pause in the client would show up as server latency
    try:
        async with asyncio.timeout(warmup_s + duration_s + 120.0):
            await asyncio.gather(*(worker(i, c) for i, c in enumerate(connections)))
    finally:
        for connection in connections:
            connection.close()
        if gc_was_enabled:
            gc.enable()
    return result


def run_closed_loop(
    host: str, port: int, requests: list[bytes], concurrency: int, warmup_s: float, duration_s: float
) -> LoadResult:
    """Synchronous entry point: one fresh uvloop event loop per run."""
    return uvloop.run(closed_loop(host, port, requests, concurrency, warmup_s, duration_s))
