"""Slow and oversized clients, dealt with at the HTTP connection, before the app sees a request.

uvicorn by itself waits without limit for a request head or body that never ends, accepts a header of
any size (httptools parses a growing value at a cost that grows with the square of its size, on the
event loop) and accepts connections until the process runs out of file descriptors: 1,100 half-sent
requests once locked every client and probe out. `nnserve serve` therefore runs uvicorn's httptools
protocol with four additions, all settings (docs/hardening.md):

- `max_header_bytes`: a request head (request line and headers) larger than this gets 431 and the
  connection is closed, as soon as the count passes it;
- `header_timeout_s`: a head that has not arrived this long after its first byte gets 408;
- `body_timeout_s`: a body that has not arrived this long after its head gets 408 (the route reading it
  sees the client gone), however the body is framed;
- `max_connections`: past it, a new connection makes room by closing the connection that has waited
  longest for the rest of its request head, or else the longest idle keep-alive connection; connections
  with requests being served are never closed for it. So a flood of half-sent requests cannot lock a
  probe out. It is capped below the process's file descriptor limit.

Per request this costs a clock read and a few attribute writes; the deadlines are checked by one sweep
per second over the open connections (`sweep`), not by a timer per request.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("service.connections")

RESERVED_DESCRIPTORS = 64
"""File descriptors kept for model files, logs and the listening socket when capping `max_connections`."""


def usable_connections(wanted: int) -> int:
    """`wanted`, capped below the file descriptor limit (raised to its hard maximum first)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - RESERVED_DESCRIPTORS))


def _error(status: int, reason: str, message: str) -> bytes:
    body = orjson.dumps({"error": message})
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds of the module docstring (set by `guarded_protocol`)."""

    max_header_bytes = 64 * 1024
    header_timeout_s = 10.0
    body_timeout_s = 60.0
    max_connections = 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_open = True
        """Between requests and while a head arrives; False from the end of a head to the end of its body."""
        self._head_bytes = 0
        self._completed = False
        """Whether a request ended in the chunk being parsed."""
        self._waiting_since: float | None = None
        """When the part now arriving (head or body) started; None when no request is arriving."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._make_room()

    def data_received(self, data: bytes) -> None:
        if self._waiting_since is None:
            self._waiting_since = self.loop.time()
        head_was_open, self._completed = self._head_open, False
        super().data_received(data)
        # Counted only when the whole chunk went into one unfinished head: a chunk that also ended a
        # request (a body's tail, pipelined requests) may hold anything, and is left to the next one.
        if head_was_open and self._head_open and not self._completed and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes:
                self._refuse(431, "Request Header Fields Too Large",
                             f"request head: more than max_header_bytes ({self.max_header_bytes})")  # fmt: skip

    def on_headers_complete(self) -> None:
        self._head_open = False
        self._waiting_since = self.loop.time()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._completed = True
        self._head_open = True
        self._head_bytes = 0
        self._waiting_since = None
        super().on_message_complete()

    def sweep(self, now: float) -> None:
        """Called once a second: end a request whose head or body is overdue."""
        since = self._waiting_since
        if since is None or self.transport.is_closing():
            return
        if self._head_open and now - since > self.header_timeout_s:
            limit = f"header_timeout_s ({self.header_timeout_s:g} s)"
            self._refuse(408, "Request Timeout", f"request head: not complete after {limit}")
        elif not self._head_open and now - since > self.body_timeout_s:
            limit = f"body_timeout_s ({self.body_timeout_s:g} s)"
            self._refuse(408, "Request Timeout", f"request body: not complete after {limit}")

    def _refuse(self, status: int, reason: str, message: str) -> None:
        """Answer (unless the route already did) and close; a route still reading the body sees the client gone."""
        log.info("connection_refused", extra={"status": status, "reason": message, "client": self.client})
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(_error(status, reason, message))
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # what uvicorn marks when a client leaves: the route's sends are dropped
            self.cycle.message_event.set()
        self._waiting_since = None
        self.transport.close()

    def _make_room(self) -> None:
        """Close the connection stalled longest on its head, else the longest idle one (never this one)."""
        others = [c for c in self.connections if isinstance(c, GuardedHttpTools) and c is not self]
        stalled = [c for c in others if c._stalled_head()]
        if stalled:
            victim = min(stalled, key=lambda c: c._waiting_since or 0.0)
            victim._refuse(503, "Service Unavailable", "connection closed: max_connections reached; retry")
            return
        idle = [c for c in others if c._idle()]
        if idle:
            idle[0].transport.close()

    def _stalled_head(self) -> bool:
        return self._head_open and self._waiting_since is not None and not self.transport.is_closing()

    def _idle(self) -> bool:
        return (
            self._waiting_since is None
            and (self.cycle is None or self.cycle.response_complete)
            and not self.transport.is_closing()
        )


def guarded_protocol(
    *, max_header_bytes: int, header_timeout_s: float, body_timeout_s: float, max_connections: int
) -> type[GuardedHttpTools]:
    """A protocol class with these limits, for `uvicorn.Config(http=...)`."""
    limits = {
        "max_header_bytes": max_header_bytes,
        "header_timeout_s": header_timeout_s,
        "body_timeout_s": body_timeout_s,
        "max_connections": usable_connections(max_connections),
    }
    return type("GuardedHttpTools", (GuardedHttpTools,), limits)


def sweep(connections: set[Any], now: float) -> None:
    """Check every open connection's deadline (see `GuardedHttpTools.sweep`)."""
    for connection in list(connections):
        if isinstance(connection, GuardedHttpTools):
            connection.sweep(now)
