"""Reading a request body: its Content-Type must be one the endpoint reads (415 otherwise), then any
Content-Encoding is undone under the size limit.

Accepted without a second look: no Content-Type at all (tritonclient sends none), JSON (`application/json`
or any `+json` type), `application/octet-stream` (binary tensors), and the two types that clients put on
JSON bodies by default (`text/plain` from a browser's fetch, `application/x-www-form-urlencoded` from
`curl -d`). Anything else (XML, CSV, a multipart upload where only JSON is read) is refused by name
rather than failing later as "not valid JSON".
"""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import Headers

from service.errors import UnsupportedMediaType
from service.protocol.body import decompress
from service.settings import Settings

JSON_BODIES = frozenset(
    {"", "application/json", "application/octet-stream", "text/plain", "application/x-www-form-urlencoded"}
)
MULTIPART = "multipart/form-data"


def media_type(headers: Headers) -> str:
    """The Content-Type without parameters, lower case; "" when absent."""
    return headers.get("content-type", "").partition(";")[0].strip().lower()


def check_media_type(headers: Headers, *, multipart: bool = False) -> str:
    """The request's media type, when the endpoint reads it; UnsupportedMediaType otherwise."""
    kind = media_type(headers)
    if kind in JSON_BODIES or kind.endswith("+json") or (multipart and kind == MULTIPART):
        return kind
    accepted = "application/json" + (f" or {MULTIPART}" if multipart else "")
    raise UnsupportedMediaType(f"Content-Type: {kind!r} is not read by this endpoint; send {accepted}")


async def read_body(request: Request) -> bytes:
    """The plain body of a JSON (or binary-tensor) request, checked and decompressed."""
    settings: Settings = request.app.state.settings
    return plain_body(request.headers, await request.body(), settings.max_request_bytes)


def plain_body(headers: Headers, body: bytes, limit: int) -> bytes:
    """`body` as read, once its Content-Type is checked and any Content-Encoding undone under `limit`."""
    check_media_type(headers)
    return decompress(body, headers.get("content-encoding"), limit)
