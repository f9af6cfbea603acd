"""The shared testkit's nnserve process, plus what only the hardening tests read from it: the process's
resident memory, its JSON log events, one consistent scrape of /metrics, and a SIGTERM with its exit code.
"""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from testkit import processes
from testkit.server import START_TIMEOUT_S, running_server
from testkit.server import Server as BaseServer

EXIT_TIMEOUT_S = 60.0


def wait_for(what: str, condition: Callable[[], object], timeout_s: float = 30.0) -> None:
    """Poll `condition()` until it holds; fail naming `what` after `timeout_s`."""
    processes.wait_for(what, condition, timeout_s)


@dataclass(frozen=True)
class Server(BaseServer):
    repository: Path = Path()
    """The repository it serves, absolute: answers must never contain it."""

    def log_events(self) -> list[dict[str, Any]]:
        """The server's JSON log lines (other lines, e.g. ONNX Runtime's own, are skipped)."""
        events = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    events.append(entry)
        return events

    def rss_bytes(self) -> int:
        """Resident set size of the server process, from /proc."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS line in /proc/<pid>/status")

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        """One scrape of GET /metrics as (name, labels, value): a consistent snapshot."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]

    def terminate(self) -> int:
        """SIGTERM, then the exit code (the server must stop by itself)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=EXIT_TIMEOUT_S)


@contextmanager
def serving(
    repository: Path,
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    timeout_s: float = START_TIMEOUT_S,
) -> Iterator[Server]:
    """nnserve on `repository` with NNSERVE_* variables from `env`, stopped when the block ends; fails if
    start-up loading has not ended after `timeout_s`."""
    with running_server(repository, log, args=args, env=env, timeout_s=timeout_s) as base:
        yield Server(**{f.name: getattr(base, f.name) for f in fields(base)}, repository=repository)
