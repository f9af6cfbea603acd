"""The checkout's deploy paths, and the CPU image's start command translated to run outside a container.

The command and environment are read from deploy/Dockerfile; only container paths are mapped to this
checkout and venv, the bind address to loopback and the port to a free one. So the process the
container would run is the one the metric and health-check tests talk to.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from dockerfile_model import Stage, parse
from testkit.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CPU_DOCKERFILE = DEPLOY / "Dockerfile"
GPU_DOCKERFILE = DEPLOY / "Dockerfile.gpu"
READY_TIMEOUT_S = 240.0
"""Loading every bundled model on a busy two-core CI machine; the poll returns as soon as it is ready."""


def final_stage(dockerfile: Path) -> Stage:
    return parse(dockerfile)[-1]


def container_path_map(stage: Stage, workdir: Path) -> dict[str, str]:
    """Container paths of the final stage -> their counterparts in this checkout and venv."""
    mapping = {"/opt/venv": sys.prefix, "/opt/nnserve/healthcheck.py": str(DEPLOY / "healthcheck.py")}
    for copy in stage.copies():
        if copy.from_stage is None:
            for source in copy.sources:
                mapping[copy.destination.rstrip("/")] = str(ROOT / source.rstrip("/"))
    workdir_instruction = stage.resolved("WORKDIR")
    if workdir_instruction:
        mapping.setdefault(workdir_instruction[-1][1].strip(), str(workdir))
    return mapping


def map_paths(value: str, mapping: dict[str, str]) -> str:
    """Replace a container path prefix (longest first) with the local one."""
    for container, local in sorted(mapping.items(), key=lambda kv: -len(kv[0])):
        if value == container or value.startswith(container + "/"):
            return local + value[len(container) :]
    return value


def local_command(stage: Stage, mapping: dict[str, str]) -> list[str]:
    """ENTRYPOINT + CMD of the stage with executables resolved in this venv."""
    entrypoint = stage.exec_form("ENTRYPOINT") or []
    command = [map_paths(word, mapping) for word in entrypoint + (stage.exec_form("CMD") or [])]
    executable = Path(sys.prefix) / "bin" / command[0]
    if executable.exists():
        command[0] = str(executable)
    elif shutil.which(command[0]) is None:
        pytest.fail(f"the image's entry command {command[0]!r} is not installed here (pip install -e .)")
    return command


def local_env(stage: Stage, mapping: dict[str, str], port: int) -> dict[str, str]:
    """The stage's ENV with paths mapped; loopback instead of 0.0.0.0 so nothing listens beyond it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNSERVE_")}
    for key, value in stage.env().items():
        if key != "PATH":
            env[key] = map_paths(value, mapping)
    env["PATH"] = f"{Path(sys.prefix) / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    env["NNSERVE_HOST"] = "127.0.0.1"
    env["NNSERVE_PORT"] = str(port)
    if env.get("NNSERVE_GRPC_PORT", "0") != "0":  # a free one: the image's 8001 is one port per machine
        env["NNSERVE_GRPC_PORT"] = str(free_port())
    return env
