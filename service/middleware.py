"""Per-request plumbing as plain ASGI (no buffering): request ID, body limit, client disconnects, metrics,
access log, last-resort 500.

- `X-Request-ID` is accepted when it looks like an ID (else a new one is made) and echoed on every answer.
- Bodies over `max_request_bytes` get 413: at once from Content-Length, or as soon as a chunked body
  passes the limit while a route reads it.
- A client that goes away is noticed: Starlette does not cancel a handler when its client disconnects,
  so once the request body has been read (and the request has lasted 20 ms) a watcher waits for
  `http.disconnect` and cancels the handler.
  A request still queued for a batch then leaves the queue without ever running (docs/batching.md).
  Such requests are counted with code 499 (nginx's "client closed request").
- Every answer is logged (unless `access_log` is off) and counted in `nnserve_requests_total` and
  `nnserve_request_duration_seconds`, labelled by the route's name and by the model and version the
  route served (`RequestInfo`, filled in by the route's model lease), so unknown paths and model
  names never create label values.
- Requests being handled are counted in the app's `Lifecycle` (`nnserve_requests_in_flight`), which the
  graceful shutdown reports while it drains.
- An exception no handler claimed becomes a 500 `{"error": ...}` naming the request ID; the traceback
  goes to the log only.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
import uuid
from dataclasses import dataclass

from starlette._utils import get_route_path
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import PayloadTooLarge
from service.lifecycle import Lifecycle
from service.logs import request_id
from service.metrics import Metrics
from service.responses import error_response_for

log = logging.getLogger("service.access")

_ID_RE = re.compile(r"^[A-Za-z0-9._:@=+/-]{1,128}$")
"""Anything else (spaces, control characters, huge values) is replaced: it ends up in log lines."""
CLIENT_CLOSED = 499
UNMATCHED = "unmatched"
"""The endpoint label of requests that matched no route."""
_INFO_KEY = "nnserve.request"
LOOP_STATE = "nnserve.loop"
"""The lifespan state key of the app's event loop (see `event_loop`)."""
WATCH_AFTER_S = 0.02
"""How long a request runs before its client is watched for going away (see `_DisconnectWatch`)."""


@dataclass
class RequestInfo:
    """What the middleware learns about a request from the route that serves it."""

    received_at: float
    """time.monotonic() when the request arrived: per-request deadlines count from here."""
    model: str = ""
    """A model the repository knows (never a name a client made up), "" when the request names none."""
    version: str = ""
    endpoint: str = ""
    """The route's name, from a handler that serves without FastAPI's routing (which names `scope["route"]`)."""


def route_path(scope: Scope) -> str:
    """The path as the app's routes match it: `scope["path"]` less the `root_path` the app is mounted under.

    uvicorn's `--root-path` (and any ASGI server behind a prefix-stripping proxy) puts the prefix in
    front of `scope["path"]`, while routing strips it. Everything else that decides by path (access
    control, the error shape, the fast path) must see exactly what routing sees, or a prefix opens a
    gap between them; so this is Starlette's own routing function, not a copy of it.
    """
    return get_route_path(scope)


def event_loop(scope: Scope) -> asyncio.AbstractEventLoop:
    """The app's loop, from the lifespan state (`LOOP_STATE`) when the app put it there, else looked up.

    On Python 3.11 every `asyncio.get_running_loop()` makes a getpid() system call; the lifespan state
    is copied into each request's scope anyway.
    """
    loop = scope.get("state", {}).get(LOOP_STATE)
    return loop if isinstance(loop, asyncio.AbstractEventLoop) else asyncio.get_running_loop()


def request_info(scope: Scope) -> RequestInfo:
    """The request's info, created on first use when the app runs without the middleware (tests)."""
    info = scope.get(_INFO_KEY)
    if info is None:
        info = scope[_INFO_KEY] = RequestInfo(received_at=time.monotonic())
    assert isinstance(info, RequestInfo)
    return info


class _DisconnectWatch:
    """After the body is read, waits for the client to go away and then cancels the handler's task.

    The waiting task starts only once the request has lasted `WATCH_AFTER_S`: most requests are
    answered sooner, and a task made and cancelled for each of them cost a few percent of the CPU per
    request and, through the reference cycles a cancelled task leaves, long garbage-collector pauses.
    """

    def __init__(self, receive: Receive, loop: asyncio.AbstractEventLoop) -> None:
        self._receive = receive
        self._loop = loop
        self._handler: asyncio.Task[object] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.body_read = False
        self.responded = False
        self.disconnected = False

    def start(self) -> None:
        self.body_read = True
        self._handler = asyncio.current_task(self._loop)
        if self._handler is not None:
            self._timer = self._loop.call_later(WATCH_AFTER_S, self._begin)

    def _begin(self) -> None:
        if self._watcher is None and not self.responded:
            self._watcher = self._loop.create_task(self._watch())

    async def _watch(self) -> None:
        # ASGI servers answer a receive() after the body with http.disconnect, when the client goes
        # away or once the response is complete; only the first means the client left.
        while (await self._receive())["type"] != "http.disconnect":
            pass
        if not self.responded and self._handler is not None:
            self.disconnected = True
            self._handler.cancel()

    async def wait(self) -> Message:
        """The handler asks again after the body (e.g. a streaming response listening for disconnect)."""
        if self._handler is not None:
            self._begin()
        if self._watcher is not None:
            await asyncio.shield(self._watcher)
        return {"type": "http.disconnect"}

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._watcher is not None and not self._watcher.done():
            self._watcher.cancel()

    def claim(self) -> bool:
        """True when a CancelledError came from this watcher (and not, say, from server shutdown)."""
        return self.disconnected and self._handler is not None and self._handler.uncancel() == 0


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        metrics: Metrics | None = None,
        lifecycle: Lifecycle | None = None,
        access_log: bool = True,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.access_log = access_log
        self.lifecycle = lifecycle or Lifecycle()
        self._id_prefix = uuid.uuid4().hex[:16]
        self._ids = itertools.count()
        """New request IDs: a random prefix per process and a counter, a fraction of uuid4's cost."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        info = scope[_INFO_KEY] = RequestInfo(received_at=time.monotonic())
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _ID_RE.match(given) else f"{self._id_prefix}{next(self._ids):016x}"
        token = request_id.set(rid)
        self.lifecycle.in_flight += 1
        status = 0
        received = 0
        watch = _DisconnectWatch(receive, event_loop(scope))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                watch.responded = True
            await send(message)

        async def checked_receive() -> Message:
            nonlocal received
            if watch.body_read:
                return await watch.wait()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise PayloadTooLarge(f"body: larger than max_request_bytes ({self.max_body_bytes} bytes)")
                if not message.get("more_body", False):
                    watch.start()
            return message

        try:
            length = headers.get(b"content-length", b"0")
            declared = int(length) if length.isdigit() else 0
            if declared > self.max_body_bytes:
                response = error_response_for(
                    route_path(scope),
                    413,
                    f"body: {declared} bytes, more than max_request_bytes ({self.max_body_bytes})",
                )
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, checked_receive, send_with_id)
        except asyncio.CancelledError:
            if not watch.claim():
                raise
            log.info("client_disconnected", extra={"path": scope["path"]})
            status = status or CLIENT_CLOSED
        except ClientDisconnect:  # gone while the route was still reading the body
            log.info("client_disconnected", extra={"path": scope["path"]})
            status = status or CLIENT_CLOSED
        except Exception:
            watch.stop()
            log.exception("unhandled_error", extra={"path": scope["path"]})
            if status == 0:
                response = error_response_for(route_path(scope), 500, f"internal server error (request id {rid})")
                await response(scope, receive, send_with_id)
        finally:
            watch.stop()
            self.lifecycle.in_flight -= 1
            seconds = time.perf_counter() - started
            if self.metrics is not None:
                route = scope.get("route")
                self.metrics.observe_request(
                    model=info.model,
                    version=info.version,
                    endpoint=info.endpoint or getattr(route, "name", None) or UNMATCHED,
                    code=status,
                    seconds=seconds,
                )
            if self.access_log:
                log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "ms": round(seconds * 1000, 3),
                    },
                )
            request_id.reset(token)
