"""Per-request plumbing as plain ASGI (no buffering): request ID, body limit, access log, last-resort 500.

- `X-Request-ID` is accepted when it looks like an ID (else a new one is made) and echoed on every answer.
- Bodies over `max_request_bytes` get 413: at once from Content-Length, or as soon as a chunked body
  passes the limit while a route reads it.
- An exception no handler claimed becomes a 500 `{"error": ...}` naming the request ID; the traceback
  goes to the log only.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import PayloadTooLarge
from service.logs import request_id
from service.responses import error_response

log = logging.getLogger("service.access")

_ID_RE = re.compile(r"^[A-Za-z0-9._:@=+/-]{1,128}$")
"""Anything else (spaces, control characters, huge values) is replaced: it ends up in log lines."""


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _ID_RE.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 0
        received = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise PayloadTooLarge(
                        f"body: larger than max_request_bytes ({self.max_body_bytes} bytes)"
                    )
            return message

        try:
            length = headers.get(b"content-length", b"0")
            declared = int(length) if length.isdigit() else 0
            if declared > self.max_body_bytes:
                response = error_response(
                    413, f"body: {declared} bytes, more than max_request_bytes ({self.max_body_bytes})"
                )
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, limited_receive, send_with_id)
        except Exception:
            log.exception("unhandled_error", extra={"path": scope["path"]})
            if status == 0:
                response = error_response(500, f"internal server error (request id {rid})")
                await response(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 3),
                },
            )
            request_id.reset(token)
