"""Open Inference Protocol v2 JSON shapes as pydantic models: request validation and the OpenAPI schema.

Responses are built as plain dicts and serialized with orjson (see `service.responses`); the response
models here exist for the documentation at /docs.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Parameters = dict[str, str | int | float | bool]


class _Strict(BaseModel):
    """Unknown keys are errors: a misspelt `datatype` must not be silently ignored. Values are not
    coerced either (`"ready": 0` is not `false`, `"shape": ["1"]` is not `[1]`): what the schema says."""

    model_config = ConfigDict(extra="forbid", strict=True)


class InferInputTensor(_Strict):
    name: str
    shape: list[int] = Field(description="Full shape, batch axis first.")
    datatype: str = Field(description="BOOL, UINT8..64, INT8..64, FP16, FP32, FP64 or BYTES.")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description='`{"binary_data_size": N}`: the data follows the JSON as raw bytes.'
    )
    data: Any = Field(default=None, description="Row-major values, flat or nested; absent for binary inputs.")


class InferRequestedOutput(_Strict):
    name: str
    parameters: dict[str, Any] = Field(
        default_factory=dict, description='`{"binary_data": true}` and/or `{"classification": N}`.'
    )


class InferRequest(_Strict):
    id: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict, description='`{"binary_data_output": true}`.')
    inputs: list[InferInputTensor] = Field(min_length=1)
    outputs: list[InferRequestedOutput] | None = Field(default=None, description="Absent: every output.")


class InferOutputTensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[Any] | None = None


class InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[InferOutputTensor]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    task: str = Field(description="nnserve: the model's task (tensor = v2 only).")
    provider: str = Field(description="nnserve: execution provider in use (cpu, cuda, tensorrt).")
    providers: list[str] = Field(description="nnserve: ONNX Runtime's provider list for the session.")


class ModelConfigView(BaseModel):
    """Triton's model configuration keys, plus nnserve's own config under `nnserve`."""

    name: str
    platform: str
    backend: str
    max_batch_size: int = Field(description="0 = no batch axis: dims are the exact shapes.")
    input: list[dict[str, Any]] = Field(description="dims leave out the batch axis when max_batch_size > 0.")
    output: list[dict[str, Any]]
    dynamic_batching: dict[str, Any] | None = Field(
        None, description="preferred_batch_size, max_queue_delay_microseconds; absent when max_batch_size < 2."
    )
    nnserve: dict[str, Any]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class Liveness(BaseModel):
    live: bool


class Readiness(BaseModel):
    ready: bool
    reason: str | None = Field(default=None, description="When not ready: why.")
    models: dict[str, str] | None = Field(default=None, description="When not ready: the reason per model.")
    error: str | None = Field(default=None, description="When not ready: the reason, under Triton's error key.")


class ModelReadiness(BaseModel):
    name: str
    ready: bool
    reason: str | None = None
    error: str | None = Field(default=None, description="When not ready: the reason, under Triton's error key.")


class IndexRow(BaseModel):
    name: str
    version: str
    state: str = Field(description="READY, LOADING or UNAVAILABLE.")
    reason: str


class IndexRequest(_Strict):
    ready: bool = Field(default=False, description="true: list only ready models.")


class LoadRequest(_Strict):
    parameters: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    error: str
