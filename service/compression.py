"""Response compression: `Accept-Encoding: gzip` or `deflate` compresses inference answers of at least a
set size.

tritonclient's `response_compression_algorithm` sends exactly `Accept-Encoding: gzip` (or `deflate`) and
decompresses the answer when, and only when, `Content-Encoding` says so; `deflate` there means the zlib
format (RFC 9110), as Python's `zlib.compress` writes it. `Inference-Header-Content-Length` keeps counting
the uncompressed JSON, which is what the client reads after decompressing.

Only inference answers (`.../infer`), as Triton does: tritonclient.http.aio sends aiohttp's default
`Accept-Encoding: gzip, deflate` with every request but decodes only inference answers, so a compressed
statistics or metadata answer would break it. Plain ASGI around the inference fast path, so the fast
path and the FastAPI route both compress. Other paths cost one `endswith`; an inference request without
`Accept-Encoding` one scan of the raw header list. With it, the answer is held until its first body
message: a small answer, a stream or an already encoded answer leaves unchanged.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ENCODINGS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": lambda body, level: gzip.compress(body, compresslevel=level, mtime=0),
    "deflate": lambda body, level: zlib.compress(body, level),
}
"""What each accepted encoding writes; gzip is preferred when a client accepts both equally."""
OFF_THE_LOOP_BYTES = 256 * 1024
"""Larger bodies are compressed in a worker thread, so one large answer does not stall other requests."""
INCOMPRESSIBLE = (b"image/", b"video/", b"audio/", b"text/event-stream")
COMPRESSED_PATHS = "/infer"
"""The v2 inference routes, with or without a version (Triton compresses only these)."""


def accepted_encoding(header: bytes) -> str | None:
    """The encoding to use for an `Accept-Encoding` value: gzip or deflate with the highest q above 0."""
    best: tuple[float, int, str] | None = None
    for item in header.decode("latin-1").lower().split(","):
        token, _, params = item.partition(";")
        token = token.strip()
        name = "gzip" if token in ("gzip", "x-gzip", "*") else token
        if name not in ENCODINGS:
            continue
        quality = 1.0
        key, _, value = params.strip().partition("=")
        if key.strip() == "q":
            try:
                quality = float(value)
            except ValueError:
                continue
        rank = (quality, 1 if name == "gzip" else 0, name)
        if quality > 0 and (best is None or rank > best):
            best = rank
    return None if best is None else best[2]


class ResponseCompression:
    """Compresses complete answers of at least `min_bytes` for clients that accept gzip or deflate."""

    def __init__(self, app: ASGIApp, *, min_bytes: int, level: int) -> None:
        self.app = app
        self.min_bytes = min_bytes
        self.level = level

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.min_bytes <= 0 or not scope["path"].endswith(COMPRESSED_PATHS):
            await self.app(scope, receive, send)
            return
        encoding = None
        for name, value in scope["headers"]:
            if name == b"accept-encoding":
                encoding = accepted_encoding(value)
                break
        if encoding is None:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _CompressingSend(send, encoding, self.min_bytes, self.level))


class _CompressingSend:
    """Holds the response start until the first body message shows whether to compress."""

    def __init__(self, send: Send, encoding: str, min_bytes: int, level: int) -> None:
        self.send = send
        self.encoding = encoding
        self.min_bytes = min_bytes
        self.level = level
        self.start: Message | None = None
        self.decided = False

    async def __call__(self, message: Message) -> None:
        if self.decided:
            await self.send(message)
            return
        if message["type"] == "http.response.start":
            self.start = message
            return
        if message["type"] != "http.response.body" or self.start is None:
            await self.send(message)
            return
        self.decided = True
        start, body = self.start, message.get("body", b"")
        headers: list[tuple[bytes, bytes]] = list(start.get("headers", []))
        if message.get("more_body", False) or len(body) < self.min_bytes or not _compressible(headers):
            await self.send(start)
            await self.send(message)
            return
        compress = ENCODINGS[self.encoding]
        if len(body) > OFF_THE_LOOP_BYTES:
            body = await asyncio.to_thread(compress, body, self.level)
        else:
            body = compress(body, self.level)
        headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
        headers += [
            (b"content-encoding", self.encoding.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"vary", b"Accept-Encoding"),
        ]
        await self.send({**start, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})


def _compressible(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-encoding":
            return False
        if lower == b"content-type" and value.lower().startswith(INCOMPRESSIBLE):
            return False
    return True
