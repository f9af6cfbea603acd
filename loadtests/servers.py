"""Server processes for the benchmark: pinned with taskset, polled until ready, CPU time accounted.

Also writes the repository variants the served arms load: one model, with the thread count fixed
and dynamic batching on (the model's own settings) or off (`max_batch_size: 0`).
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

from service.schema.config import CONFIG_FILE, ExecutionSettings, load_config, write_config

READY_PATH = "/v2/health/ready"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_set(cpus: str) -> set[int]:
    """The CPUs of a taskset list such as `0`, `0,2` or `0-3`."""
    result: set[int] = set()
    for part in cpus.split(","):
        low, _, high = part.partition("-")
        result.update(range(int(low), int(high or low) + 1))
    return result


def pinned(command: list[str], cpus: str | None) -> list[str]:
    """`command` run under `taskset -c cpus` (unpinned when cpus is None)."""
    return ["taskset", "-c", cpus, *command] if cpus else command


@dataclass(frozen=True)
class CpuUsage:
    """CPU a process tree ran for, and how long its threads sat runnable waiting for a CPU.

    The wait comes from the kernel's schedstat (run-queue delay): on a machine shared with other
    work it shows how much of a run the server spent queued behind a neighbour rather than serving.
    """

    cpu_s: float
    wait_s: float

    def __sub__(self, other: CpuUsage) -> CpuUsage:
        return CpuUsage(self.cpu_s - other.cpu_s, self.wait_s - other.wait_s)


def _run_queue_wait_s(pid: int) -> float:
    total = 0
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:  # gone, or not Linux
        return 0.0
    for tid in threads:
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended meanwhile
    return total / 1e9


def process_usage(process: psutil.Process, children: bool = True) -> CpuUsage:
    """CPU time and run-queue wait of a process (and, by default, its live children)."""
    cpu = wait = 0.0
    members = (process, *process.children(recursive=True)) if children else (process,)
    for member in members:
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        cpu += times.user + times.system
        wait += _run_queue_wait_s(member.pid)
    return CpuUsage(cpu, wait)


@dataclass
class Server:
    """A running server process; stop it with `stop()`."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes]

    def usage(self) -> CpuUsage:
        return process_usage(psutil.Process(self.process.pid))

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def _ready(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", READY_PATH)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def start_server(
    name: str,
    command: list[str],
    port: int,
    log_dir: Path,
    env: dict[str, str] | None = None,
    timeout_s: float = 180,
) -> Server:
    """Start `command` (already pinned) and return once GET /v2/health/ready answers 200.

    gRPC is off unless `env` or a `--grpc-port` flag turns it on: arms start side by side, and its
    default port, 8001, is one per machine.
    """
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    environment = {**os.environ, "NNSERVE_GRPC_PORT": "0", **(env or {})}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
    server = Server(name, port, process, log_path, log)
    deadline = time.monotonic() + timeout_s
    while not _ready(port):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = server.log_tail()
            server.stop()
            raise RuntimeError(f"{name} did not become ready on port {port}:\n{tail}")
        time.sleep(0.1)  # polling interval, not a wait for readiness
    return server


def service_command(repository: Path, port: int, serve_command: list[str]) -> list[str]:
    return [*serve_command, "--repository", str(repository), "--host", "127.0.0.1", "--port", str(port)]


def floor_command(repository: Path, model: str, port: int, threads: int, provider: str, max_tokens: int) -> list[str]:
    return [
        sys.executable, "-m", "loadtests.floor", "--repository", str(repository), "--model", model,
        "--port", str(port), "--threads", str(threads), "--provider", provider,
        "--max-tokens", str(max_tokens),
    ]  # fmt: skip


def write_variant(source: Path, model: str, target: Path, *, batching: bool, threads: int, provider: str) -> Path:
    """Copy one model into a fresh repository at `target`, with fixed threads and batching on or off."""
    model_dir = target / model
    shutil.copytree(source / model, model_dir, ignore=shutil.ignore_patterns(CONFIG_FILE))
    config = load_config(source / model)
    execution = ExecutionSettings.model_validate(
        {
            **config.execution.model_dump(),
            "providers": [provider] if provider == "cpu" else [provider, "cpu"],
            "intra_op_threads": threads,
            "inter_op_threads": 1,
            "instances": 1,
        }
    )
    batching_settings = config.batching if batching else config.batching.model_copy(update={"max_batch_size": 0})
    write_config(model_dir, config.model_copy(update={"execution": execution, "batching": batching_settings}))
    return target
