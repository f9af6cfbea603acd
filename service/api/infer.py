"""One v2 inference, from the request's plain values to the answer's bytes.

Plain values (headers, body, path segments) rather than a Starlette `Request`, because two callers
run it: the FastAPI route in `service.api.v2`, and the ASGI fast path in `service.api.fastpath`, which
takes the common case past FastAPI's per-request machinery. Both then answer exactly alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import Headers

from service.api.body import plain_body
from service.api.deps import deadline, lease
from service.errors import InvalidInput
from service.middleware import RequestInfo
from service.protocol.infer import decode_request, encode_response, parse_json, split_body
from service.protocol.sequences import check_sequences
from service.repository.registry import ModelRepository
from service.runtime.model import ServedModel
from service.settings import Settings

FRAMING_HEADER = "inference-header-content-length"
JSON = "application/json"
BINARY = "application/octet-stream"


@dataclass(frozen=True)
class InferAnswer:
    body: bytes
    json_length: int | None
    """Length of the JSON before binary outputs (`Inference-Header-Content-Length`); None = all JSON."""

    @property
    def media_type(self) -> str:
        return JSON if self.json_length is None else BINARY


async def run_infer(
    repository: ModelRepository,
    settings: Settings,
    info: RequestInfo,
    name: str,
    version: str | None,
    headers: Headers,
    body: bytes,
) -> InferAnswer:
    """Decode, run in a batch, encode; raises the service's and the batcher's errors for the handlers."""
    with lease(repository, info, name, version) as model:
        plain = plain_body(headers, body, settings.max_request_bytes)
        framing = headers.get(FRAMING_HEADER)
        decoded = decode_request(
            plain, framing, model.inputs, model.outputs, finite=finite_inputs(model, settings), shared=model.shared_dims
        )
        check_sequences(model.config, decoded.inputs)
        request_deadline = deadline(headers, info, _parameters_timeout_s(plain, framing))
        results = await model.infer(decoded.inputs, deadline=request_deadline)
    payload, json_length = encode_response(
        model.name,
        model.version,
        decoded.id,
        results,
        decoded.outputs,
        class_labels(model),
        settings.max_response_bytes,
    )
    return InferAnswer(payload, json_length)


def _parameters_timeout_s(body: bytes, header_length: str | None) -> float | None:
    """`parameters.timeout` of a request `decode_request` accepted (microseconds; 0 = none, as in Triton).

    The JSON is read a second time only when it mentions a timeout at all, which few requests do.
    """
    head, _ = split_body(body, header_length)
    if b'"timeout"' not in head:
        return None
    parameters = parse_json(head).get("parameters") or {}
    return parameter_timeout_s(parameters.get("timeout") if isinstance(parameters, dict) else None)


def parameter_timeout_s(value: object) -> float | None:
    """The v2 `timeout` parameter (microseconds; 0 or absent = none, as in Triton) in seconds (any transport)."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput(f"parameters.timeout: expected microseconds as an integer >= 0, got {value!r}")
    return value / 1_000_000 if value else None


def finite_inputs(model: ServedModel, settings: Settings) -> bool:
    """Whether NaN and infinity are refused: for task models, unless the settings allow them (any transport).

    A tabular model's feature vector marks a missing value as NaN on purpose (its graph imputes it)."""
    return not settings.allow_non_finite and model.config.task != "tensor" and model.config.tabular is None


def class_labels(model: ServedModel) -> dict[str, list[str]]:
    """Class labels by output name, for the classification extension (any transport)."""
    settings = model.config.classification
    return {settings.probabilities: settings.labels} if settings is not None else {}
