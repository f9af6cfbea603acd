"""Probes and streams over gRPC across a server's life: on SIGTERM gRPC reports not ready at once while
still serving (the shutdown delay), and a client that cancels a generation stream stops its sequence."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_repository import build_small_repository
from grpc_servers import GrpcServer, serve_grpc
from testkit.processes import free_port


@pytest.fixture()
def draining_server(tmp_path: Path) -> Iterator[GrpcServer]:
    repository = build_small_repository(tmp_path / "repository")
    yield from serve_grpc(repository, tmp_path / "server.log", {"NNSERVE_SHUTDOWN_DELAY_S": "30"})


def test_sigterm_turns_grpc_readiness_off_while_it_still_serves(draining_server: GrpcServer) -> None:
    client = grpcclient.InferenceServerClient(draining_server.grpc_url)
    assert client.is_server_ready()
    draining_server.http.process.send_signal(signal.SIGTERM)
    draining_server.http.wait_for("gRPC readiness to turn off", lambda: not client.is_server_ready())
    with grpc.insecure_channel(draining_server.grpc_url) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        ready = health.Check(health_pb2.HealthCheckRequest(service="readiness"), timeout=5).status
        live = health.Check(health_pb2.HealthCheckRequest(service="liveness"), timeout=5).status
    assert (ready, live) == (health_pb2.HealthCheckResponse.NOT_SERVING, health_pb2.HealthCheckResponse.SERVING)
    assert client.is_server_live()
    inputs = []
    for name in ("INPUT0", "INPUT1"):
        tensor = grpcclient.InferInput(name, [1, 16], "INT32")
        tensor.set_data_from_numpy(np.ones((1, 16), np.int32))
        inputs.append(tensor)
    assert client.infer("simple", inputs).as_numpy("OUTPUT0").tolist() == [[2] * 16]


def test_cancelled_generation_stream_stops_its_sequence(server: GrpcServer) -> None:
    client = grpcclient.InferenceServerClient(server.grpc_url)
    pieces: queue.Queue[object] = queue.Queue()
    client.start_stream(callback=lambda result, error: pieces.put(result if error is None else error))
    text = grpcclient.InferInput("text_input", [1], "BYTES")
    text.set_data_from_numpy(np.array([b"ROMEO:\n"], dtype=object))
    client.async_stream_infer("tiny-gpt", [text], parameters={"max_tokens": 250})
    assert isinstance(pieces.get(timeout=60), grpcclient.InferResult), "the first piece arrived"
    client.stop_stream(cancel_requests=True)

    def generate_stats() -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{server.http.url}/v2/models/tiny-gpt/generate_stats", timeout=10).json()
        return answer

    server.http.wait_for("the sequence to leave the engine", lambda: generate_stats()["active"] == 0)
    assert generate_stats()["finish_reasons"].get("cancelled", 0) >= 1


def test_taken_grpc_port_stops_start_up_with_a_clear_error(tmp_path: Path) -> None:
    """No silent sharing of a port (grpcio's SO_REUSEPORT is off): a second server must not start."""
    repository = build_small_repository(tmp_path / "repository")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "service", "serve", "--repository", str(repository),
             "--port", str(free_port()), "--grpc-port", str(port)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert run.returncode != 0
    assert f"gRPC: cannot listen on 127.0.0.1:{port}" in run.stdout + run.stderr
