"""What the v2 metadata and config endpoints say, independent of the transport.

HTTP (service/api/v2.py) and gRPC render these same dictionaries, so both protocols describe a model
identically (the KServe habit: one data plane, thin transports).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class TritonBatching:
    """A model's batching in Triton's terms: `max_batch_size` 0 means no batch axis (exact shapes)."""

    max_batch_size: int
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = 0


def triton_batching(model: ServedModel) -> TritonBatching:
    """The served version's effective batching (`ServedModel.batches` and its policy), so the config
    endpoints say what the batcher does: a scalar or a fixed first dimension has no batch axis
    (`max_batch_size` 0, exact dims) whatever config.yaml asks. A `max_batch_size` of 1 keeps the axis but
    forms no batches, so it reports no `dynamic_batching`."""
    if not model.batches:
        return TritonBatching(0)
    return TritonBatching(
        model.max_batch_size, tuple(model.preferred_batch_sizes), round(model.max_queue_delay_ms * 1000)
    )


def _triton_type(datatype: str) -> str:
    """ModelConfig's DataType name: TYPE_FP32 and so on, except that BYTES is TYPE_STRING."""
    return "TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"


def model_config_view(model: ServedModel) -> dict[str, Any]:
    """Triton-style model configuration (as Triton's tools read it), plus nnserve's own config.yaml values.

    As in Triton's ModelConfig, `dims` leave out the batch axis when `max_batch_size > 0`, and
    `dynamic_batching` is present when requests are joined into batches (`max_batch_size > 1`); perf
    analyzer and model analyzer decide from these whether and how large to batch.
    """
    batching = triton_batching(model)

    def tensors(specs: Sequence[TensorSpec]) -> list[dict[str, Any]]:
        skip = 1 if batching.max_batch_size > 0 else 0
        return [{"name": s.name, "data_type": _triton_type(s.datatype), "dims": s.shape[skip:]} for s in specs]

    view: dict[str, Any] = {
        "name": model.name,
        "platform": PLATFORM,
        "backend": "onnxruntime",
        "max_batch_size": batching.max_batch_size,
        "input": tensors(model.inputs),
        "output": tensors(model.outputs),
    }
    if batching.max_batch_size > 1:
        view["dynamic_batching"] = {
            "preferred_batch_size": list(batching.preferred_batch_sizes),
            "max_queue_delay_microseconds": batching.max_queue_delay_us,
        }
    view["nnserve"] = model.config.model_dump(mode="json", exclude_none=True)
    return view
