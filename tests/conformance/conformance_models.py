"""Triton's example models, built with onnx.helper at test time: the official client examples expect a
repository holding `simple` (INPUT0 and INPUT1, INT32 [-1, 16], to OUTPUT0 = sum and OUTPUT1 =
difference) and, for simple_http_model_control.py, seven models in all."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

from service.schema.config import MODEL_FILE

OPSET = [helper.make_opsetid("", 17)]
ADMIN_KEY = "conformance-admin-key"
"""The full-access key of the server that takes uploads (conftest.keyed_server)."""
COMPRESS_MIN_BYTES = 512
"""NNSERVE_COMPRESS_MIN_BYTES of the plain server (conftest.server)."""
REPOSITORY_SIZE = 7
"""simple_http_model_control.py checks that the index lists seven models."""
SIMPLE_CONFIG = """\
batching:
  max_batch_size: 8
  preferred_batch_sizes: [4, 8]
  max_queue_delay_ms: 0.1
"""


def simple_model(first_dim: int | str = "batch", dtype: int = TensorProto.INT32) -> bytes:
    """INPUT0, INPUT1 [first_dim, 16] -> OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1."""
    shape = [first_dim, 16]
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["INPUT0", "INPUT1"], ["OUTPUT0"]),
            helper.make_node("Sub", ["INPUT0", "INPUT1"], ["OUTPUT1"]),
        ],
        "simple",
        [helper.make_tensor_value_info(n, dtype, shape) for n in ("INPUT0", "INPUT1")],
        [helper.make_tensor_value_info(n, dtype, shape) for n in ("OUTPUT0", "OUTPUT1")],
    )
    model = helper.make_model(graph, opset_imports=OPSET, ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_model(root: Path, name: str, model: bytes, config: str = "", version: int = 1) -> Path:
    directory = root / name
    (directory / str(version)).mkdir(parents=True)
    (directory / str(version) / MODEL_FILE).write_bytes(model)
    if config:
        (directory / "config.yaml").write_text(config, encoding="utf-8")
    return directory


def build_triton_examples_repository(root: Path) -> Path:
    """`simple` (batching up to 8), `simple_fixed` (first dimension 1: no batch axis) and five more."""
    write_model(root, "simple", simple_model(), SIMPLE_CONFIG)
    write_model(root, "simple_fixed", simple_model(first_dim=1), "batching:\n  max_batch_size: 0\n")
    write_model(root, "simple_fp32", simple_model(dtype=TensorProto.FLOAT))
    for i in range(1, REPOSITORY_SIZE - 2):
        write_model(root, f"simple_copy_{i}", simple_model())
    return root
