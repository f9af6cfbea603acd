"""One shared server for the bad-input, fault and access tests: bundled models, models made to fail,
and API keys configured. Tests that stop, reload or measure a server start their own."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import keys
from .repository import BUNDLED, copy_bundled, write_broken, write_faulty, write_missing, write_picky, write_slow
from .server import Server, serving

OUTSIDE_MODEL = "outside-model"
"""A valid model placed next to (not inside) the repository: no request may reach it."""


@pytest.fixture(scope="session")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("hardening")
    root = base / "models"
    root.mkdir()
    copy_bundled(root, "digits-cnn", "digits-ae", "text-lstm", "tiny-gpt")
    write_broken(root)
    write_missing(root)
    write_faulty(root)
    write_picky(root)
    write_slow(root)
    write_slow(root, "narrow", max_queue_size=2)
    shutil.copytree(BUNDLED / "digits-cnn", base / OUTSIDE_MODEL)
    return root.resolve()


@pytest.fixture(scope="session")
def server(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("hardening-logs") / "server.log"
    with serving(repository, log, env=keys.server_env()) as srv:
        yield srv
