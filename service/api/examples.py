"""Request and response examples for /docs, one set per endpoint, from a server running the bundled models."""

from __future__ import annotations

from typing import Any

from service.protocol.schemas import ErrorBody

DIGIT_ZERO = [
    [0, 0, 5, 13, 9, 1, 0, 0],
    [0, 0, 13, 15, 10, 15, 5, 0],
    [0, 3, 15, 2, 0, 11, 8, 0],
    [0, 4, 12, 0, 0, 8, 8, 0],
    [0, 5, 8, 0, 0, 9, 8, 0],
    [0, 4, 11, 0, 1, 12, 7, 0],
    [0, 2, 14, 5, 10, 12, 0, 0],
    [0, 0, 6, 13, 10, 0, 0, 0],
]
"""The first image of scikit-learn's digits (a zero), in the model's own 0..16 values."""

DIGIT_ZERO_PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAAAAADhZOFXAAAARklEQVR42gXBYRVAMBgAwHt7/vsiaGCaLIJGIqyCBp4EI4E1III7lLYFaG99i0G"
    "elh55T+LqbpI4GUm+WeQP01PqAdZW8QOg+BHx1aT2vAAAAABJRU5ErkJggg=="
)
"""The same zero as an 8x8 PNG, bright ink on black."""


def json_content(example: Any) -> dict[str, Any]:
    return {"application/json": {"examples": {"example": {"value": example}}}}


def ok(example: Any, model: Any = None) -> dict[int | str, dict[str, Any]]:
    """A 200 response with its example and, when given, the schema (a pydantic model or list of one)."""
    response: dict[str, Any] = {"description": "OK", "content": json_content(example)}
    if model is not None:
        response["model"] = model
    return {200: response}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    texts = {
        400: (
            "Malformed input",
            "inputs[0] 'pixels': shape [1, 64] does not match the model's [-1, 1, 8, 8] (-1 = any)",
        ),
        401: (
            "API key missing or wrong (sent with `WWW-Authenticate: Bearer`)",
            "Authorization: missing API key; send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
        ),
        403: (
            "The API key may not do this (an inference-only key on the repository API)",
            "Authorization: this API key may run models but not change the repository",
        ),
        404: ("Unknown model or version", "Request for unknown model: 'digits-cnnn' is not found"),
        413: (
            "Too large: the body, a text, a picture's pixels or the number of instances",
            "body: 30000000 bytes, more than max_request_bytes (16777216)",
        ),
        415: (
            "A Content-Type or Content-Encoding this endpoint does not read",
            "Content-Type: 'application/xml' is not read by this endpoint; send application/json",
        ),
        503: (
            "Model not ready",
            "Request for unknown model: 'broken' has no available versions: broken/1/model.onnx: missing file",
        ),
    }
    return {
        status: {
            "description": texts[status][0],
            "model": ErrorBody,
            "content": json_content({"error": texts[status][1]}),
        }
        for status in statuses
    }


def request_body(
    examples: dict[str, Any], *, multipart: bool = False, schema: dict[str, Any], required: bool = True
) -> dict[str, Any]:
    """An OpenAPI requestBody for routes that read the body themselves (binary framing, multipart).

    `schema` may carry pydantic's `$defs`: `service.api.openapi` moves them to the components.
    """
    content: dict[str, Any] = {
        "application/json": {
            "schema": schema,
            "examples": {name: {"value": value} for name, value in examples.items()},
        }
    }
    if multipart:
        content["multipart/form-data"] = {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "array", "items": {"type": "string", "format": "binary"}, "minItems": 1},
                    "top_k": {"type": "integer", "default": 3, "minimum": 1},
                },
            }
        }
    return {"requestBody": {"required": required, "content": content}}


SERVER_METADATA = {
    "name": "nnserve",
    "version": "0.1.0",
    "extensions": ["binary_tensor_data", "classification", "model_repository", "model_configuration"],
}

NOT_READY = {
    "ready": False,
    "reason": "some models are not ready",
    "models": {"broken": "models/broken/1/model.onnx: cannot load ONNX model: ..."},
    "error": "some models are not ready",
}

MODEL_METADATA = {
    "name": "digits-cnn",
    "versions": ["1"],
    "platform": "onnxruntime_onnx",
    "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 1, 8, 8]}],
    "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}],
    "task": "image-classification",
    "provider": "cpu",
    "providers": ["CPUExecutionProvider"],
}

INFER_REQUEST = {
    "id": "42",
    "inputs": [
        {"name": "pixels", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [DIGIT_ZERO]},
    ],
    "outputs": [{"name": "probabilities"}],
}

INFER_CLASSIFICATION_REQUEST = {
    "inputs": [{"name": "pixels", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [DIGIT_ZERO]}],
    "outputs": [{"name": "probabilities", "parameters": {"classification": 2}}],
}

INFER_RESPONSE = {
    "model_name": "digits-cnn",
    "model_version": "1",
    "id": "42",
    "outputs": [
        {
            "name": "probabilities",
            "datatype": "FP32",
            "shape": [1, 10],
            "data": [
                0.9999964, 3.897335e-7, 1.7826223e-7, 9.468681e-8, 2.6009465e-8,
                6.2115697e-7, 2.2545677e-7, 3.8965433e-7, 0.0000012167696, 4.5503015e-7,
            ],
        }
    ],
}  # fmt: skip

MODEL_CONFIG = {
    "name": "digits-cnn",
    "platform": "onnxruntime_onnx",
    "backend": "onnxruntime",
    "max_batch_size": 32,
    "input": [{"name": "pixels", "data_type": "TYPE_FP32", "dims": [1, 8, 8]}],
    "output": [{"name": "probabilities", "data_type": "TYPE_FP32", "dims": [10]}],
    "dynamic_batching": {"preferred_batch_size": [], "max_queue_delay_microseconds": 0},
}

INDEX = [
    {"name": "digits-cnn", "version": "1", "state": "READY", "reason": ""},
    {
        "name": "broken",
        "version": "1",
        "state": "UNAVAILABLE",
        "reason": "models/broken/1/model.onnx: missing file",
    },
]

PREDICT_IMAGE = {"instances": [{"b64": DIGIT_ZERO_PNG_B64}], "parameters": {"top_k": 3}}
PREDICT_PIXELS = {"instances": [DIGIT_ZERO]}
PREDICT_TEXT = {"instances": ["WINNER!! Claim your free prize now", "see you at lunch?"]}
PREDICT_TABLE = {
    "instances": [
        {"sepal_length": 5.1, "sepal_width": "3.5", "petal_length": None, "colour": "violet"},
        [6.7, 3.0, 5.2, ""],
    ]
}
"""Tabular rows: objects by column name, or arrays in the config's column order; null or "" = missing."""
PREDICT_CLASS_RESPONSE = {
    "model_name": "digits-cnn",
    "model_version": "1",
    "predictions": [
        {
            "label": "0",
            "score": 0.9999995231628418,
            "top_k": [
                {"label": "0", "score": 0.9999995231628418},
                {"label": "2", "score": 3.102551602296444e-7},
                {"label": "7", "score": 4.431272415672538e-8},
            ],
        }
    ],
}
PREDICT_ANOMALY_RESPONSE = {
    "model_name": "digits-ae",
    "model_version": "1",
    "predictions": [
        {"score": 1.2849836349487305, "threshold": 5.0115132331848145, "is_anomaly": False},
        {"score": 37.67090606689453, "threshold": 5.0115132331848145, "is_anomaly": True},
    ],
}
GENERATED_SEVEN_PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAAAAACPAi4CAAAApUlEQVR4nO3WIQ7CQBBG4YWkaQJJk0oSCIYbcIe66l6kpqoeje4FCFfAwQkIqg4B"
    "ClOBrXljdk6wk/lk0741f7INAUu0+OKCPbbIEDxgMtDhFbljjRDzgInAAiuUeGCAGpAHTAVkSDuc8MMTFeRAD9gKbHDDhA/OqKGG5IGkAzKIAg3e6JFD"
    "DcgDJgJx6Ig/DlAfeMBkQH4cRlwhF078vnrugZQDM6pQbr1VQyOeAAAAAElFTkSuQmCC"
)
"""digits-gan's seven for seed 3 (64x64 PNG), as `:predict` answers it."""
PREDICT_GENERATION = {"instances": [{"label": "7", "seed": 3, "count": 1}], "parameters": {"scale": 8}}
PREDICT_GENERATION_RESPONSE = {
    "model_name": "digits-gan",
    "model_version": "1",
    "predictions": [{"label": "7", "seed": 3, "count": 1, "images": [{"b64": GENERATED_SEVEN_PNG_B64}]}],
}

MODEL_STATUS = {
    "name": "digits-cnn",
    "ready": True,
    "task": "image-classification",
    "versions": [{"version": "1", "state": "READY", "reason": "", "provider": "cpu"}],
}
