"""The gRPC tests' servers: a real nnserve serving gRPC on a free loopback port (fixtures in conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from testkit.processes import free_port
from testkit.server import Server, running_server

ADMIN_KEY = "admin-key-for-tests"
INFERENCE_KEY = "inference-key-for-tests"
SMALL_MESSAGE_LIMIT = 64 * 1024


@dataclass(frozen=True)
class GrpcServer:
    http: Server
    grpc_port: int

    @property
    def grpc_url(self) -> str:
        """`127.0.0.1:PORT`, as tritonclient.grpc wants it."""
        return f"{self.http.host}:{self.grpc_port}"


def serve_grpc(repository: Path, log: Path, env: dict[str, str] | None = None) -> Iterator[GrpcServer]:
    port = free_port()
    with running_server(repository, log, args=["--grpc-port", str(port)], env=env, require_ready=True) as server:
        server.wait_for("gRPC to listen", lambda: "grpc_serving" in server.log_text())
        yield GrpcServer(server, port)
