"""Two real servers on Triton's example repository: one as a new user starts it (no keys, every model
ready), for the unmodified examples and protocol checks; one with an API key, for deploying over the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conformance_models import ADMIN_KEY, COMPRESS_MIN_BYTES, build_triton_examples_repository
from testkit.server import Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = build_triton_examples_repository(tmp_path_factory.mktemp("triton-examples"))
    log = tmp_path_factory.mktemp("logs") / "server.log"
    args = ["--compress-min-bytes", str(COMPRESS_MIN_BYTES)]
    with running_server(root, log, args=args, require_ready=True) as srv:
        yield srv


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    root = build_triton_examples_repository(tmp_path_factory.mktemp("deploy-repository"))
    log = tmp_path_factory.mktemp("logs") / "keyed.log"
    with running_server(
        root, log, env={"NNSERVE_API_KEYS": ADMIN_KEY, "NNSERVE_MAX_UPLOAD_BYTES": "200000"}, require_ready=True
    ) as srv:
        yield srv, root
