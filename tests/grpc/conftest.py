"""Real nnserve processes serving gRPC on a free loopback port, shared by the tests of this folder.

This folder has no `__init__.py` on purpose: as a package named `grpc` it would shadow grpcio.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from grpc_repository import build_repository, build_small_repository
from grpc_servers import ADMIN_KEY, INFERENCE_KEY, SMALL_MESSAGE_LIMIT, GrpcServer, serve_grpc


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcServer]:
    repository = build_repository(tmp_path_factory.mktemp("grpc-repository"))
    yield from serve_grpc(repository, tmp_path_factory.mktemp("grpc-logs") / "server.log")


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
    yield from serve_grpc(repository, tmp_path_factory.mktemp("grpc-guarded-logs") / "server.log", env)
