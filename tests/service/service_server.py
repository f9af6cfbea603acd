"""A real `python -m service serve` on a free loopback port, polled until it has finished loading."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

START_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.05


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    host_port: str
    """`127.0.0.1:PORT`, as tritonclient wants it."""
    process: subprocess.Popen[bytes]
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _loaded(url: str) -> bool:
    """True once start-up loading is over: ready, or not ready for a reason other than loading."""
    try:
        response = httpx.get(f"{url}/v2/health/ready", timeout=2.0)
    except httpx.TransportError:
        return False
    return response.status_code == 200 or response.json().get("reason") != "models are loading"


@contextmanager
def running_server(
    repository: Path, log: Path, *, args: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    port = free_port()
    command = [sys.executable, "-m", "service", "serve", "--repository", str(repository), "--port", str(port)]
    environment = {**os.environ, "NNSERVE_LOG_LEVEL": "info", **(env or {})}
    with log.open("wb") as sink:
        process = subprocess.Popen([*command, *args], stdout=sink, stderr=subprocess.STDOUT, env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _loaded(url):
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not loaded after {START_TIMEOUT_S}s:\n{log.read_text()}")
            time.sleep(POLL_INTERVAL_S)  # polling interval, not a wait for readiness
        yield Server(url=url, host_port=f"127.0.0.1:{port}", process=process, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
