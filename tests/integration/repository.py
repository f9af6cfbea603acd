"""The integration tests' model repository: the bundled models as shipped, plus variants of them whose
config makes one behaviour certain (the exact-batch switch, a tiny queue), and a model that fails at
run time for some inputs.

Variants get their own names, so each test reads statistics that only its own requests produced.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from service.schema.config import (
    BatchingSettings,
    ModelConfig,
    TensorSpec,
    load_config,
    write_config,
)

BUNDLED = Path(__file__).resolve().parents[2] / "models"
SHIPPED = ("digits-cnn", "text-transformer")
GATHER_TABLE = np.array([0.5, 1.5, 2.5, 3.5], np.float32)
"""The failing model answers GATHER_TABLE[index]; an index outside 0..3 makes its run fail."""


def copy_model(root: Path, source: str, name: str, **changes: dict[str, Any]) -> Path:
    """A copy of a bundled model under another name; `changes` go into its config, section by section
    (`batching={"max_queue_size": 2}` changes that field alone)."""
    target = root / name
    shutil.copytree(BUNDLED / source, target)
    config = load_config(BUNDLED / source).model_dump()
    for section, fields in changes.items():
        config[section] |= fields
    write_config(target, ModelConfig.model_validate(config | {"name": name}))
    return target


def write_gather_model(root: Path, name: str, exact_batch_requests: int) -> None:
    """y = table[index] with a 4-entry table: ONNX Runtime refuses an index outside it while running."""
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "index"], ["value"], axis=0)],  # (N, 1) -> (N, 1)
        "gather",
        [helper.make_tensor_value_info("index", TensorProto.INT64, ["batch", 1])],
        [helper.make_tensor_value_info("value", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(GATHER_TABLE, "table")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    (root / name / "1").mkdir(parents=True)
    onnx.save(model, root / name / "1" / "model.onnx")
    config = ModelConfig(
        name=name,
        inputs=[TensorSpec(name="index", datatype="INT64", shape=[-1, 1])],
        outputs=[TensorSpec(name="value", datatype="FP32", shape=[-1, 1])],
        batching=BatchingSettings(max_batch_size=16),
        execution={"providers": ["cpu"]},
        parameters={"exact_batch_requests": exact_batch_requests},
    )
    write_config(root / name, config)


def build_repository(root: Path) -> Path:
    for name in SHIPPED:
        shutil.copytree(BUNDLED / name, root / name)
    exact = {"exact_batch_requests": 2}
    copy_model(root, "digits-cnn", "digits-exact8", parameters={"exact_batch_requests": 8})
    copy_model(root, "digits-cnn", "digits-deadline", parameters=exact)
    copy_model(root, "digits-cnn", "digits-disconnect", parameters=exact)
    copy_model(
        root,
        "digits-cnn",
        "digits-queue",
        batching={"max_queue_size": 2},
        parameters={"exact_batch_requests": 3},
    )
    copy_model(root, "digits-cnn", "digits-prometheus")
    copy_model(root, "digits-cnn", "digits-two-instances", execution={"instances": 2})
    write_gather_model(root, "gather-fail", exact_batch_requests=4)
    return root
