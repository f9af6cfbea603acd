"""One real server on a repository holding the committed digits-gan and digits-cnn (its judge)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from gan_testkit import COMMITTED, MAX_GENERATED
from testkit.server import Server, running_server


@pytest.fixture(scope="session")
def gan_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repository = tmp_path_factory.mktemp("gan-repository")
    for name in ("digits-gan", "digits-cnn"):
        shutil.copytree(COMMITTED / name, repository / name)
    return repository


@pytest.fixture(scope="module")
def server(gan_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("gan-server") / "server.log"
    env = {"NNSERVE_MAX_GENERATED_IMAGES": str(MAX_GENERATED)}
    with running_server(gan_repository, log, env=env, require_ready=True) as srv:
        yield srv
