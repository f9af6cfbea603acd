"""One HTTP/1.1 exchange over a bare socket, for bodies no ordinary client would send politely.

The body goes out in chunks, and sending stops as soon as the server answers: that is how a test sees
a 413 arrive before a 30 MB body has been sent (an ordinary client would insist on sending it all, and
then report a broken pipe instead of the answer).
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass

import orjson


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int
    """Body bytes sent before the answer came."""
    seconds: float

    def json(self) -> object:
        return orjson.loads(self.body)


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            raise ConnectionError(f"connection closed before a full response head: {data!r}")
        data += piece
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        body += piece
    return status, headers, body[:length]


def exchange(
    port: int, method: str, path: str, headers: dict[str, str], chunks: Iterable[bytes], *, chunked: bool = False
) -> RawResponse:
    """Send the request head, then the body chunk by chunk (HTTP chunked encoding when `chunked`),
    stopping early if the server answers or closes; return its answer."""
    started = time.perf_counter()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        try:
            for chunk in chunks:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                sent += len(chunk)
            else:
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending: read its answer
        status, response_headers, body = _read_response(sock)
    return RawResponse(status, response_headers, body, sent, time.perf_counter() - started)
