"""The benchmark's parts against real processes: the CLIs, and the load generator driving the floor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from loadtests.httpload import build_request, run_closed_loop
from loadtests.servers import floor_command, free_port, start_server
from loadtests.workloads import load_workload

TINY_CONFIG = """\
task: image-classification
inputs: [{name: pixels, datatype: FP32, shape: [-1, 1, 8, 8]}]
outputs: [{name: probabilities, datatype: FP32, shape: [-1, 10]}]
image: {height: 8, width: 8}
classification: {labels: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"], probabilities: probabilities}
"""


def write_tiny_digits_model(repository: Path) -> None:
    """A linear digits classifier: a real ONNX graph with the bundled model's interface, built at once."""
    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.normal(0, 0.01, (64, 10)).astype(np.float32), "W")
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["pixels"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "W"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "tiny-digits",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    (repository / "digits-cnn" / "1").mkdir(parents=True)
    onnx.save(model, repository / "digits-cnn" / "1" / "model.onnx")
    (repository / "digits-cnn" / "config.yaml").write_text(TINY_CONFIG)


@pytest.mark.parametrize("module", ["loadtests.run", "loadtests.bench"])
def test_help_prints_usage_for_each_cli(module: str) -> None:
    completed = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"usage: python -m {module}")


def test_closed_loop_drives_floor_server_without_errors(tmp_path: Path) -> None:
    write_tiny_digits_model(tmp_path / "repo")
    workload = load_workload(tmp_path / "repo", "digits-cnn", max_tokens=8)
    port = free_port()
    command = floor_command(tmp_path / "repo", "digits-cnn", port, threads=1, provider="cpu", max_tokens=8)
    server = start_server("floor", command, port, tmp_path)
    try:
        requests = [build_request("127.0.0.1", port, workload.path, body) for body in workload.bodies()[:20]]
        result = run_closed_loop("127.0.0.1", port, requests, concurrency=4, warmup_s=0.2, duration_s=1.0)
        assert server.usage().cpu_s > 0
    finally:
        server.stop()
    assert result.errors == 0, result.first_error
    assert result.completed > 20
    assert 0 < len(result.latencies_s) <= result.completed
    assert all(0 < latency < 1.0 for latency in result.latencies_s)
