"""Triton's own gRPC example clients, unmodified (tests/grpc/examples/SOURCE.md), against nnserve's
`simple` model: each is copied into a temporary folder and run as a user would run it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from grpc_servers import GrpcServer

EXAMPLES = Path(__file__).parent / "examples"
SCRIPTS = sorted(path.name for path in EXAMPLES.glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_triton_example_client_passes(server: GrpcServer, script: str, tmp_path: Path) -> None:
    copy = tmp_path / script
    shutil.copyfile(EXAMPLES / script, copy)
    run = subprocess.run(
        [sys.executable, str(copy), "-u", server.grpc_url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "PASS" in output, output
    assert "error" not in output.lower(), output
