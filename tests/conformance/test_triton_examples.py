"""Triton's official HTTP client examples (tests/conformance/examples/, vendored unmodified) run against
nnserve on Triton's example repository and exit 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from testkit.server import Server

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE / "examples"
SCRIPT_TIMEOUT_S = 120


def _run(server: Server, *command: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, *command, "-u", server.host_port],
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_S,
        cwd=HERE,
    )
    assert result.returncode == 0, (
        f"{command}: exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.mark.parametrize(
    "script", ["simple_http_infer_client.py", "simple_http_async_infer_client.py", "simple_http_aio_infer_client.py"]
)
def test_infer_example_runs_unmodified(server: Server, script: str) -> None:
    output = _run(server, str(EXAMPLES / script)).stdout
    assert "15 + " in output and "15 - " in output, output[-2000:]  # the last of the 16 sums it checked


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_infer_example_with_compression_runs_unmodified(server: Server, algorithm: str) -> None:
    script = str(EXAMPLES / "simple_http_infer_client.py")
    output = _run(
        server, script, "--request-compression-algorithm", algorithm, "--response-compression-algorithm", algorithm
    ).stdout
    assert "15 + -1 = 14" in output


def test_health_metadata_example_runs_with_only_the_server_name_read_as_triton(server: Server) -> None:
    """The one check skipped: the script exits 1 unless the server's name is "triton"."""
    output = _run(server, str(HERE / "as_triton.py"), str(EXAMPLES / "simple_http_health_metadata.py")).stdout
    assert "'name': 'simple'" in output


def test_model_control_example_runs_unmodified(server: Server) -> None:
    """Seven models in the index, a bad override refused with "failed to load", max_batch_size 8 -> 16,
    unload, and "failed to load" for an unknown model. Runs last: it leaves `simple` unloaded."""
    assert "PASS: model control" in _run(server, str(EXAMPLES / "simple_http_model_control.py")).stdout
