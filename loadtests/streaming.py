"""Server-sent events as the load tests see them, kept free of locust so the runner can import it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

TTFT = "TTFT"
"""Request type under which streaming users report time to first token, next to the request's own row."""


def sse_data(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield the `data` payload of each server-sent event from byte chunks cut anywhere."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk.replace(b"\r\n", b"\n")
        while b"\n\n" in buffer:
            raw, buffer = buffer.split(b"\n\n", 1)
            lines = [line[5:].removeprefix(b" ") for line in raw.split(b"\n") if line.startswith(b"data:")]
            if lines:
                yield b"\n".join(lines)
