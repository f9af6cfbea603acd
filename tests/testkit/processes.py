"""Subprocesses the tests start and must always stop: a free loopback port, output into a log file,
polling with a deadline that shows the log on failure, and SIGTERM then SIGKILL by PID."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

POLL_INTERVAL_S = 0.05
"""How often conditions are polled: short enough to add no visible latency, long enough to idle."""
STOP_TIMEOUT_S = 15.0
"""SIGTERM's grace before SIGKILL; a graceful nnserve shutdown drains well within it."""


def free_port() -> int:
    """A loopback port that was free a moment ago (the OS picks it; the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_excerpt(log: Path, chars: int = 2500) -> str:
    """Start and end of a log: start-up errors come first, the final state last."""
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    if len(text) <= 2 * chars:
        return text
    return f"{text[:chars]}\n[...]\n{text[-chars:]}"


def wait_for(
    what: str,
    condition: Callable[[], object],
    timeout_s: float,
    *,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    interval_s: float = POLL_INTERVAL_S,
) -> None:
    """Poll `condition()` until it is truthy; fail naming `what` after `timeout_s`.

    A refused or dropped HTTP connection counts as "not yet". With `process`, its exit ends the wait at
    once (it can no longer come true); with `log`, every failure message carries an excerpt of it.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if condition():
                return
        except httpx.TransportError:
            pass
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{_name(process)} exited with {process.returncode} waiting for {what}{_tail(log)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}{_tail(log)}")
        time.sleep(interval_s)  # the polling interval, not a wait for the condition


def stop(process: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, and SIGKILL if it has not exited within `timeout_s`; always reaps the process."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


@contextmanager
def launched(
    command: Sequence[str],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stop_timeout_s: float = STOP_TIMEOUT_S,
) -> Iterator[subprocess.Popen[bytes]]:
    """`command` running with stdout and stderr in `log`, stopped (see `stop`) when the block ends."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            list(command), stdout=sink, stderr=subprocess.STDOUT, env=None if env is None else dict(env), cwd=cwd
        )
    try:
        yield process
    finally:
        stop(process, stop_timeout_s)


def _name(process: subprocess.Popen[bytes]) -> str:
    args = process.args
    words = [str(a) for a in args] if isinstance(args, list | tuple) else [str(args)]
    return " ".join(words)


def _tail(log: Path | None) -> str:
    return "" if log is None else f"; log {log}:\n{log_excerpt(log)}"
