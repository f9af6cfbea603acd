"""Fixtures for the deploy tests: one live nnserve server, started as the CPU image starts it.

One model-loading start-up serves every test in this folder (see image_process for how the image's
command becomes a local process).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from image_process import (
    CPU_DOCKERFILE,
    READY_TIMEOUT_S,
    container_path_map,
    final_stage,
    local_command,
    local_env,
    map_paths,
)
from testkit.processes import free_port
from testkit.server import Server, serving


@pytest.fixture(scope="session")
def image_server() -> Iterator[Server]:
    """nnserve started exactly as the CPU image starts it, serving the bundled models/."""
    stage = final_stage(CPU_DOCKERFILE)
    with tempfile.TemporaryDirectory(prefix="nnserve-deploy-") as tmp:
        workdir = Path(tmp)
        mapping = container_path_map(stage, workdir)
        repository = Path(map_paths(stage.env()["NNSERVE_REPOSITORY"], mapping))
        if not any(p.is_dir() and (p / "config.yaml").exists() for p in repository.iterdir()):
            pytest.fail(f"{repository} holds no model, so the image would serve nothing")
        port = free_port()
        command = local_command(stage, mapping)
        env = local_env(stage, mapping, port)
        log = workdir / "server.log"
        ready = {"require_ready": True, "timeout_s": READY_TIMEOUT_S}
        with serving(command, log, port=port, env=env, cwd=workdir, **ready) as server:
            yield server
