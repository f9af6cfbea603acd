"""One real server for the generation endpoint tests, on a repository holding tiny-gpt and one model that
does not generate text (digits-cnn), linked from the bundled models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from testkit.server import Server, running_server

MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    repository = tmp_path_factory.mktemp("generation-repository")
    for name in ("tiny-gpt", "digits-cnn"):
        (repository / name).symlink_to(MODELS / name, target_is_directory=True)
    with running_server(repository, tmp_path_factory.mktemp("logs") / "server.log", require_ready=True) as srv:
        yield srv


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http
