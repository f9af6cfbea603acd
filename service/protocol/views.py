"""What the v2 metadata and config endpoints say, independent of the transport.

HTTP (service/api/v2.py) and gRPC render these same dictionaries, so both protocols describe a model
identically (the KServe habit: one data plane, thin transports).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from service.runtime.model import ServedModel
from service.schema.config import TensorSpec

SERVER_NAME = "nnserve"
PLATFORM = "onnxruntime_onnx"
EXTENSIONS = [
    "binary_tensor_data",
    "classification",
    "model_repository",
    "model_configuration",
    "statistics",
]


def server_version() -> str:
    try:
        return version("nnserve")
    except PackageNotFoundError:
        return "unknown"


def server_metadata_view() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": server_version(), "extensions": EXTENSIONS}


def _tensors(specs: Sequence[TensorSpec]) -> list[dict[str, Any]]:
    return [{"name": s.name, "datatype": s.datatype, "shape": s.shape} for s in specs]


def model_metadata_view(model: ServedModel, served_versions: Iterable[int]) -> dict[str, Any]:
    return {
        "name": model.name,
        "versions": [str(v) for v in sorted(served_versions)],
        "platform": PLATFORM,
        "inputs": _tensors(model.inputs),
        "outputs": _tensors(model.outputs),
        "task": model.config.task,
        "provider": model.provider,
        "providers": model.providers,
    }


def model_config_view(model: ServedModel) -> dict[str, Any]:
    """Triton-style model configuration (as Triton's tools read it), plus nnserve's own config.yaml values."""

    def tensors(specs: Sequence[TensorSpec]) -> list[dict[str, Any]]:
        return [{"name": s.name, "data_type": f"TYPE_{s.datatype}", "dims": s.shape} for s in specs]

    return {
        "name": model.name,
        "platform": PLATFORM,
        "backend": "onnxruntime",
        "max_batch_size": 0,
        "input": tensors(model.inputs),
        "output": tensors(model.outputs),
        "nnserve": model.config.model_dump(mode="json", exclude_none=True),
    }
