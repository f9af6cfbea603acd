"""Fixtures for the deploy tests: one live nnserve server, started as the CPU image starts it.

One model-loading start-up serves every test in this folder (see image_process for how the image's
command becomes a local process).
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from image_process import (
    CPU_DOCKERFILE,
    READY_TIMEOUT_S,
    LiveServer,
    container_path_map,
    final_stage,
    free_port,
    local_command,
    local_env,
    map_paths,
    stop,
    wait_ready,
)


@pytest.fixture(scope="session")
def image_server() -> Iterator[LiveServer]:
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
        with log.open("wb") as sink:
            process = subprocess.Popen(command, cwd=workdir, env=env, stdout=sink, stderr=subprocess.STDOUT)
        server = LiveServer(f"http://127.0.0.1:{port}", port, command, env, log, process)
        try:
            wait_ready(server, READY_TIMEOUT_S)
            yield server
        finally:
            stop(process)
