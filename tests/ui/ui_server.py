"""A real `python -m service serve` on a free loopback port, polled until start-up loading has ended."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

START_TIMEOUT_S = 90.0
POLL_INTERVAL_S = 0.05


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _loading_ended(url: str) -> bool:
    try:
        response = httpx.get(f"{url}/v2/health/ready", timeout=2.0)
    except httpx.TransportError:
        return False
    return response.status_code == 200 or response.json().get("reason") != "models are loading"


@contextmanager
def running_server(repository: Path, log: Path, env: Mapping[str, str] | None = None) -> Iterator[Server]:
    port = free_port()
    command = [sys.executable, "-m", "service", "serve", "--repository", str(repository), "--port", str(port)]
    environment = {**os.environ, "NNSERVE_HOST": "127.0.0.1", "NNSERVE_LOG_FORMAT": "text", **(env or {})}
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _loading_ended(url):
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"server still loading after {START_TIMEOUT_S}s:\n{log.read_text()}")
            time.sleep(POLL_INTERVAL_S)  # the polling interval, not a wait for readiness
        yield Server(url=url, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
