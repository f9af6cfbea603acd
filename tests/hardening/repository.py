"""Model repositories for the hardening tests: copies of the bundled models, plus models made to fail.

- `broken`: a config.yaml and a model.onnx that is not ONNX (fails to load);
- `missing`: a config.yaml and a version folder without model.onnx (fails to load);
- `faulty`: loads fine, then fails at run time whenever the input's size is not a multiple of 3
  (a Reshape to [-1, 3]): a session that raises on input the server cannot know is bad;
- `picky`: a lookup table that fails at run time for an index past its 4 rows: one request's bad value
  fails a whole batch unless the server isolates it;
- `slow`: a Loop of `steps` matrix products, so a test chooses how long each run takes and can hold
  requests in flight (queued and running) for as long as it needs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from service.schema.config import BatchingSettings, ExecutionSettings, ModelConfig, TensorSpec, write_config

BUNDLED = Path(__file__).resolve().parents[2] / "models"
OPSET = [helper.make_opsetid("", 17)]
SLOW_WIDTH = 128
"""Width of the slow model's state: one step is a (N, 128) x (128, 128) product and a tanh."""
CPU_ONLY = ExecutionSettings(providers=["cpu"], intra_op_threads=1)


def copy_bundled(root: Path, *names: str) -> None:
    for name in names:
        shutil.copytree(BUNDLED / name, root / name)


def _save(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto],
          initializers: list[onnx.TensorProto], path: Path) -> None:
    model = helper.make_model(
        helper.make_graph(nodes, path.parent.parent.name, inputs, outputs, initializers),
        opset_imports=OPSET,
        ir_version=8,
    )
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)


def _write_version_dir(root: Path, name: str) -> Path:
    """A config for an [N, 3] -> [N, 3] model and an empty version folder, for the faults to fill in."""
    config = ModelConfig(
        inputs=[TensorSpec(name="x", datatype="FP32", shape=[-1, 3])],
        outputs=[TensorSpec(name="y", datatype="FP32", shape=[-1, 3])],
        execution=CPU_ONLY,
    )
    write_config(root / name, config)
    version = root / name / "1"
    version.mkdir()
    return version


def write_broken(root: Path, name: str = "broken") -> None:
    (_write_version_dir(root, name) / "model.onnx").write_bytes(b"this is not an ONNX protobuf\x00\xff" * 8)


def write_missing(root: Path, name: str = "missing") -> None:
    _write_version_dir(root, name)


def write_faulty(root: Path, name: str = "faulty", version: int = 1) -> None:
    """y = reshape(x, [-1, 3]): fine for [N, 3k] inputs, a runtime failure for any other width."""
    _save(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "width"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", 3])],
        [numpy_helper.from_array(np.array([-1, 3], dtype=np.int64), "shape")],
        root / name / str(version) / "model.onnx",
    )
    config = ModelConfig(batching=BatchingSettings(max_batch_size=8, max_queue_delay_ms=5), execution=CPU_ONLY)
    write_config(root / name, config)


def write_picky(root: Path, name: str = "picky") -> None:
    """y = table[index]: INVALID_ARGUMENT from ONNX Runtime for an index outside 0..3 (or -4..-1)."""
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    _save(
        [helper.make_node("Gather", ["table", "index"], ["y"])],  # (N, 1) -> (N, 1, 3)
        [helper.make_tensor_value_info("index", TensorProto.INT64, ["batch", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1, 3])],
        [numpy_helper.from_array(table, "table")],
        root / name / "1" / "model.onnx",
    )
    config = ModelConfig(batching=BatchingSettings(max_batch_size=16, max_queue_delay_ms=50), execution=CPU_ONLY)
    write_config(root / name, config)


def write_slow(root: Path, name: str = "slow", *, max_batch_size: int = 1, max_queue_size: int = 256) -> None:
    """y = steps x (x -> tanh(x @ W)), with steps = max(steps) over the batch: run time chosen per request."""
    width = SLOW_WIDTH
    weights = (np.random.default_rng(0).standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("MatMul", ["state_in", "W"], ["product"]),
            helper.make_node("Tanh", ["product"], ["state_out"]),
        ],
        "step",
        [
            helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_in", TensorProto.FLOAT, ["batch", width]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_out", TensorProto.FLOAT, ["batch", width]),
        ],
    )
    _save(
        [
            helper.make_node("ReduceMax", ["steps"], ["trips"], keepdims=0),  # () int64
            helper.make_node("Loop", ["trips", "true", "x"], ["y"], body=body),  # (N, width)
        ],
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width]),
            helper.make_tensor_value_info("steps", TensorProto.INT64, ["batch", 1]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])],
        [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(np.array(True), "true")],
        root / name / "1" / "model.onnx",
    )
    config = ModelConfig(
        batching=BatchingSettings(max_batch_size=max_batch_size, max_queue_size=max_queue_size),
        execution=CPU_ONLY,
    )
    write_config(root / name, config)


def slow_request(steps: int) -> dict[str, object]:
    """A v2 request for the slow model that runs `steps` steps."""
    return {
        "inputs": [
            {"name": "x", "shape": [1, SLOW_WIDTH], "datatype": "FP32", "data": [0.5] * SLOW_WIDTH},
            {"name": "steps", "shape": [1, 1], "datatype": "INT64", "data": [steps]},
        ]
    }


SLOW_LOADING_NODES = 3000
"""MatMul-Tanh pairs in the slow-loading model: about 0.5 s per session on one core of this machine."""


def write_slow_loading(root: Path, name: str = "heavy", *, instances: int = 6) -> None:
    """A model that takes seconds to load (one large graph, `instances` sessions of it) and runs fast:
    for tests that act while a load is still going on. y = tanh(... tanh(x @ W0) ... @ Wn), x: [N, 8]."""
    width = 8
    rng = np.random.default_rng(0)
    nodes, weights, previous = [], [], "x"
    for i in range(SLOW_LOADING_NODES):
        matrix = (rng.standard_normal((width, width)) / 3).astype(np.float32)
        weights.append(numpy_helper.from_array(matrix, f"W{i}"))
        nodes.append(helper.make_node("MatMul", [previous, f"W{i}"], [f"m{i}"]))
        nodes.append(helper.make_node("Tanh", [f"m{i}"], [f"t{i}"]))
        previous = f"t{i}"
    nodes.append(helper.make_node("Identity", [previous], ["y"]))
    _save(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])],
        weights,
        root / name / "1" / "model.onnx",
    )
    execution = ExecutionSettings(providers=["cpu"], intra_op_threads=1, instances=instances)
    write_config(root / name, ModelConfig(execution=execution))


def heavy_request() -> dict[str, object]:
    return {"inputs": [{"name": "x", "shape": [1, 8], "datatype": "FP32", "data": [0.1] * 8}]}


def write_unbatchable(root: Path) -> None:
    """Drop-in models (model.onnx, no config.yaml) whose axis 0 is not a batch axis:

    - `scalar-double`: y = 2 x on a scalar (Triton's `max_batch_size: 0` case);
    - `fixed-one`: y = cumsum(x, axis 1) with x fixed at [1, 3] (a model exported with batch size 1);
    - `total`: s = sum of every element of x [N, 3], a scalar output (an output with no batch axis).
    """
    two = numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two")
    _save(
        [helper.make_node("Mul", ["x", "two"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
        [two],
        root / "scalar-double" / "1" / "model.onnx",
    )
    _save(
        [helper.make_node("CumSum", ["x", "axis"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(np.array(1, dtype=np.int64), "axis")],
        root / "fixed-one" / "1" / "model.onnx",
    )
    _save(
        [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, [])],
        [],
        root / "total" / "1" / "model.onnx",
    )


def write_pairs(root: Path) -> None:
    """Drop-in models y = a + b whose two inputs' shapes must agree in a way only the graph says:

    - `pair-shared`: a, b ["N", "K"]: the one name `K` says axis 1 of both has one size;
    - `pair-unbatched`: a, b ["N", 3] with `batching.max_batch_size: 0`, so no batcher checks axis 0;
    - `pair-distinct`: a ["N", "K"], b ["N", "J"]: different names, so only ONNX Runtime's Add notices.
    """
    float_input = helper.make_tensor_value_info
    for name, a_shape, b_shape in (
        ("pair-shared", ["N", "K"], ["N", "K"]),
        ("pair-unbatched", ["N", 3], ["N", 3]),
        ("pair-distinct", ["N", "K"], ["N", "J"]),
    ):
        _save(
            [helper.make_node("Add", ["a", "b"], ["y"])],
            [float_input("a", TensorProto.FLOAT, a_shape), float_input("b", TensorProto.FLOAT, b_shape)],
            [float_input("y", TensorProto.FLOAT, a_shape)],
            [],
            root / name / "1" / "model.onnx",
        )
    (root / "pair-unbatched" / "config.yaml").write_text("batching:\n  max_batch_size: 0\n", encoding="utf-8")


def write_outer(root: Path, name: str = "outer") -> None:
    """s = sum of the outer product x x^T per row: x [N, n] -> s [N], through an [N, n, n] intermediate,
    so a request of n values makes ONNX Runtime allocate n^2 floats (n = 8,192: 256 MiB) for one run."""
    _save(
        [
            helper.make_node("Unsqueeze", ["x", "last"], ["column"]),  # [N, n, 1]
            helper.make_node("Unsqueeze", ["x", "middle"], ["row"]),  # [N, 1, n]
            helper.make_node("MatMul", ["column", "row"], ["outer"]),  # [N, n, n]
            helper.make_node("ReduceSum", ["outer", "square"], ["s"], keepdims=0),  # [N]
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "n"])],
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, ["batch"])],
        [
            numpy_helper.from_array(np.array([-1], dtype=np.int64), "last"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "middle"),
            numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "square"),
        ],
        root / name / "1" / "model.onnx",
    )
    write_config(root / name, ModelConfig(execution=CPU_ONLY))
def write_logarithm(root: Path, name: str = "logarithm") -> None:
    """y = log(x), a tensor model: NaN for a negative input, which JSON cannot carry."""
    _save(
        [helper.make_node("Log", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [],
        root / name / "1" / "model.onnx",
    )
    write_config(root / name, ModelConfig(batching=BatchingSettings(max_batch_size=8), execution=CPU_ONLY))
