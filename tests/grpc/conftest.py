"""Real nnserve processes serving gRPC on a free loopback port, shared by the tests of this folder.

This folder has no `__init__.py` on purpose: as a package named `grpc` it would shadow grpcio.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from grpc_repository import build_repository, build_small_repository
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


def _serve(repository: Path, log: Path, env: dict[str, str] | None = None) -> Iterator[GrpcServer]:
    port = free_port()
    with running_server(repository, log, args=["--grpc-port", str(port)], env=env, require_ready=True) as server:
        server.wait_for("gRPC to listen", lambda: "grpc_serving" in server.log_text())
        yield GrpcServer(server, port)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcServer]:
    repository = build_repository(tmp_path_factory.mktemp("grpc-repository"))
    yield from _serve(repository, tmp_path_factory.mktemp("grpc-logs") / "server.log")


@pytest.fixture(scope="session")
def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcServer]:
    """API keys for everything (an admin and an inference-only key) and a 64 KiB message limit."""
    repository = build_small_repository(tmp_path_factory.mktemp("grpc-guarded-repository"))
    env = {
        "NNSERVE_API_KEYS": ADMIN_KEY,
        "NNSERVE_INFERENCE_API_KEYS": INFERENCE_KEY,
        "NNSERVE_AUTH_INFERENCE": "true",
        "NNSERVE_GRPC_MAX_MESSAGE_BYTES": str(SMALL_MESSAGE_LIMIT),
    }
    yield from _serve(repository, tmp_path_factory.mktemp("grpc-guarded-logs") / "server.log", env)
