"""The gRPC tests' model repository: bundled models, digits-cnn variants whose config makes one behaviour
certain (the exact-batch switch, a one-request queue), and `simple`, built as Triton's example model is
(INPUT0, INPUT1: INT32 [1, 16] -> OUTPUT0 = sum, OUTPUT1 = difference) for Triton's example clients, and
the hardening tests' drop-in models without a batch axis (`scalar-double`, `fixed-one`, `total`) and with
input shapes that must agree (`pair-*`), and
`strings` (Identity on a BYTES tensor, with preferred batch sizes and a queue delay) for ModelConfig."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
from hardening.repository import write_pairs, write_unbatchable
from integration.repository import BUNDLED, copy_model
from onnx import TensorProto, helper

from service.schema.config import BatchingSettings, ModelConfig, TensorSpec, write_config

SHIPPED = ("digits-cnn", "text-transformer", "tiny-gpt")


def write_simple_model(root: Path, name: str = "simple") -> None:
    def value(tensor: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(tensor, TensorProto.INT32, ["batch", 16])

    graph = helper.make_graph(
        [
            helper.make_node("Add", ["INPUT0", "INPUT1"], ["OUTPUT0"]),
            helper.make_node("Sub", ["INPUT0", "INPUT1"], ["OUTPUT1"]),
        ],
        "simple",
        [value("INPUT0"), value("INPUT1")],
        [value("OUTPUT0"), value("OUTPUT1")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    (root / name / "1").mkdir(parents=True)
    onnx.save(model, root / name / "1" / "model.onnx")
    spec = [TensorSpec(name=n, datatype="INT32", shape=[-1, 16]) for n in ("INPUT0", "INPUT1")]
    outputs = [TensorSpec(name=n, datatype="INT32", shape=[-1, 16]) for n in ("OUTPUT0", "OUTPUT1")]
    config = ModelConfig(
        name=name, inputs=spec, outputs=outputs, batching=BatchingSettings(max_batch_size=8),
        execution={"providers": ["cpu"]},
    )  # fmt: skip
    write_config(root / name, config)


def write_strings_model(root: Path, name: str = "strings") -> None:
    """text [N] BYTES -> same [N]: a model whose config has TYPE_STRING and every `dynamic_batching` field."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["text"], ["same"])],
        name,
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["batch"])],
        [helper.make_tensor_value_info("same", TensorProto.STRING, ["batch"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    (root / name / "1").mkdir(parents=True)
    onnx.save(model, root / name / "1" / "model.onnx")
    batching = BatchingSettings(max_batch_size=4, preferred_batch_sizes=[2, 4], max_queue_delay_ms=0.25)
    write_config(root / name, ModelConfig(name=name, batching=batching, execution={"providers": ["cpu"]}))


def build_repository(root: Path) -> Path:
    for name in SHIPPED:
        shutil.copytree(BUNDLED / name, root / name)
    write_simple_model(root)
    write_unbatchable(root)
    write_pairs(root)
    write_strings_model(root)
    copy_model(root, "digits-cnn", "digits-shared8", parameters={"exact_batch_requests": 8})
    copy_model(root, "digits-cnn", "digits-deadline", parameters={"exact_batch_requests": 2})
    copy_model(root, "digits-cnn", "digits-cancel", parameters={"exact_batch_requests": 2})
    copy_model(
        root, "digits-cnn", "digits-queue", batching={"max_queue_size": 1}, parameters={"exact_batch_requests": 2}
    )
    copy_model(root, "digits-cnn", "digits-reload")
    copy_model(root, "digits-cnn", "digits-unloaded")
    return root


def build_small_repository(root: Path) -> Path:
    """`simple` alone: for the servers started with special settings (keys, a small message limit)."""
    write_simple_model(root)
    return root
