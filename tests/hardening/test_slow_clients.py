"""Slow and oversized clients: half-sent requests, endless headers and stalled bodies are cut off by the
connection limits of `nnserve serve`, and a health probe still gets in (service.connections)."""

from __future__ import annotations

import os
import select
import shlex
import socket
import sys
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from testkit import processes
from testkit.server import PINNED_ENV
from testkit.server import serving as serving_command

from .payloads import INFER_DIGIT
from .repository import copy_bundled
from .server import Server

DESCRIPTORS = 160
"""The server's file descriptor limit: a flood of 200 connections would exhaust it."""
TIMEOUT_S = 1.0
QUICK_S = 3.0


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("slow-clients")
    root = base / "models"
    root.mkdir()
    copy_bundled(root, "digits-cnn")
    port = processes.free_port()
    serve = [sys.executable, "-m", "service", "serve", "--repository", str(root.resolve()), "--port", str(port)]
    command = ["sh", "-c", f"ulimit -n {DESCRIPTORS} && exec {shlex.join(serve)}"]
    env = {
        **os.environ,
        **PINNED_ENV,
        "NNSERVE_HEADER_TIMEOUT_S": str(TIMEOUT_S),
        "NNSERVE_BODY_TIMEOUT_S": str(TIMEOUT_S),
    }
    with serving_command(command, base / "server.log", port=port, env=env) as base_server:
        yield Server(**{name: getattr(base_server, name) for name in base_server.__dataclass_fields__})


def _connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _answer(sock: socket.socket, timeout_s: float) -> bytes:
    """What the server sends until it closes the connection or `timeout_s` passes."""
    sock.settimeout(timeout_s)
    data = b""
    try:
        while piece := sock.recv(65536):
            data += piece
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def test_half_sent_requests_do_not_lock_out_a_probe(limited_server: Server) -> None:
    flood = []
    try:
        for _ in range(200):
            sock = _connect(limited_server)
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")  # the head never ends
            flood.append(sock)
        started = time.perf_counter()
        probe = httpx.get(f"{limited_server.url}/v2/health/live", timeout=QUICK_S)
        assert probe.status_code == 200
        assert time.perf_counter() - started < QUICK_S
    finally:
        for sock in flood:
            sock.close()


def test_huge_header_is_refused_quickly_with_431(limited_server: Server) -> None:
    started = time.perf_counter()
    with _connect(limited_server) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: ")
        chunk = b"a" * 65536
        for _ in range(2000):  # up to 128 MB, never finished
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = _answer(sock, QUICK_S)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b"max_header_bytes" in answer
    assert time.perf_counter() - started < QUICK_S
    assert httpx.get(f"{limited_server.url}/v2/health/live", timeout=QUICK_S).status_code == 200


def test_stalled_request_head_gets_408(limited_server: Server) -> None:
    with _connect(limited_server) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")
        answer = _answer(sock, TIMEOUT_S + QUICK_S)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"header_timeout_s" in answer


def test_stalled_request_body_gets_408(limited_server: Server) -> None:
    with _connect(limited_server) as sock:
        head = "POST /v2/models/digits-cnn/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
        sock.sendall(head.encode() + b'{"inputs": [')
        answer = _answer(sock, TIMEOUT_S + QUICK_S)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"body_timeout_s" in answer
    assert httpx.get(f"{limited_server.url}/v2/health/live", timeout=QUICK_S).status_code == 200


def test_large_bodies_on_a_keep_alive_connection_are_not_taken_for_a_large_head(limited_server: Server) -> None:
    """The tail of a body that arrives with the end of a request is not counted as the next request's head."""
    body = orjson.dumps(INFER_DIGIT) + b" " * 1_000_000
    with limited_server.client() as client:
        for _ in range(5):
            response = client.post("/v2/models/digits-cnn/infer", content=body)
            assert response.status_code == 200, response.text
