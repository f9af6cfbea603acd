"""The v2 inference routes as plain ASGI, in front of FastAPI's routing: the hot path, made short.

Profiling the service under load (docs/benchmarks.md) found two thirds of the CPU per inference
request in FastAPI's per-request machinery (the inner middleware stack, the exit-stack middleware,
route matching over every route, `Request` objects, parameter solving) and only a third in the
request's own work. This middleware, the innermost of the app's own (inside the request context and
access control, so IDs, limits, metrics, logs, CORS and API keys apply as everywhere), answers
`POST /v2/models/{name}[/versions/{version}]/infer` itself by calling the same `run_infer` as the
FastAPI route, which stays for the rest: compressed bodies (`Content-Encoding`), and every request the
path does not match. The route also gives `/docs` its schema.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.infer import FRAMING_HEADER, run_infer
from service.batching import BatcherError
from service.errors import ServiceError
from service.middleware import request_info, route_path
from service.repository.registry import ModelRepository
from service.responses import domain_error_response
from service.settings import Settings

INFER_PATH = re.compile(r"/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer")
"""What FastAPI's `{name}` and `{version}` match: one path segment each."""
ENDPOINT = "infer"
"""The metrics' endpoint label, the FastAPI route's name."""


class InferenceFastPath:
    def __init__(self, app: ASGIApp, *, repository: ModelRepository, settings: Settings) -> None:
        self.app = app
        self.repository = repository
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = INFER_PATH.fullmatch(route_path(scope)) if scope["type"] == "http" else None
        if match is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if "content-encoding" in headers:
            await self.app(scope, receive, send)
            return
        info = request_info(scope)
        info.endpoint = ENDPOINT
        try:
            body = await _read_body(receive)  # a chunked body past the limit: PayloadTooLarge, 413
            answer = await run_infer(
                self.repository, self.settings, info, match["name"], match["version"], headers, body
            )
        except (ServiceError, BatcherError) as exc:
            await domain_error_response(exc, scope["path"])(scope, receive, send)
            return
        response_headers = [
            (b"content-type", answer.media_type.encode()),
            (b"content-length", str(len(answer.body)).encode()),
        ]
        if answer.json_length is not None:
            response_headers.append((FRAMING_HEADER.encode(), str(answer.json_length).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await send({"type": "http.response.body", "body": answer.body})


async def _read_body(receive: Receive) -> bytes:
    """The whole body (the request context middleware enforces its size limit as it arrives)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
