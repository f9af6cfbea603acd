"""The CPU image's start command and health check, run for real outside a container."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from image_process import CPU_DOCKERFILE, container_path_map, final_stage, map_paths
from testkit.processes import free_port
from testkit.server import Server


def _healthcheck_command(server: Server) -> list[str]:
    stage = final_stage(CPU_DOCKERFILE)
    healthcheck = stage.healthcheck()
    assert healthcheck is not None, f"{CPU_DOCKERFILE} has no HEALTHCHECK"
    _, command = healthcheck
    mapping = container_path_map(stage, server.log.parent)
    return [sys.executable if word == "python" else map_paths(word, mapping) for word in command]


def test_entry_command_serves_ready_and_live(image_server: Server) -> None:
    with httpx.Client(base_url=image_server.url, timeout=10.0) as client:
        ready = client.get("/v2/health/ready")
        live = client.get("/v2/health/live")
    assert ready.status_code == 200, ready.text
    assert live.status_code == 200, live.text


def test_entry_command_serves_the_bundled_repository(image_server: Server) -> None:
    repository = image_server.env["NNSERVE_REPOSITORY"]
    bundled = sorted(p.name for p in Path(repository).iterdir() if (p / "config.yaml").exists())
    with httpx.Client(base_url=image_server.url, timeout=10.0) as client:
        not_ready = [name for name in bundled if client.get(f"/v2/models/{name}/ready").status_code != 200]
    assert bundled, f"no model with a config.yaml under {repository}"
    assert not_ready == [], f"models not ready behind the image's command: {not_ready}"


def test_healthcheck_passes_against_the_entry_server(image_server: Server) -> None:
    command = _healthcheck_command(image_server)
    result = subprocess.run(
        command, env=image_server.env, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, f"{command} -> {result.returncode}: {result.stderr}"


def test_healthcheck_fails_when_nothing_listens(image_server: Server) -> None:
    command = _healthcheck_command(image_server)
    env = {**image_server.env, "NNSERVE_PORT": str(free_port())}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1, f"{command} -> {result.returncode}: {result.stderr}"
    assert "/v2/health/ready" in result.stderr


def test_healthcheck_fails_when_grpc_does_not_answer(image_server: Server) -> None:
    command = _healthcheck_command(image_server)
    env = {**image_server.env, "NNSERVE_GRPC_PORT": str(free_port())}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1, f"{command} -> {result.returncode}: {result.stderr}"
    assert "gRPC health" in result.stderr
