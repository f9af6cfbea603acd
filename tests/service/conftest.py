"""Session fixtures: one test repository (one model per task plus a user's config-less model) and one
real server on it, shared by the protocol tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from service_builders import build_repository
from testkit.server import Server, running_server


@pytest.fixture(scope="session")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repository(tmp_path_factory.mktemp("repository"))


@pytest.fixture(scope="session")
def server(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("logs") / "server.log"
    with running_server(
        repository, log, args=["--max-instances", "300", "--max-request-bytes", "4000000"]
    ) as srv:
        yield srv
