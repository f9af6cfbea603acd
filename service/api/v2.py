"""Open Inference Protocol v2 routes (KServe v2 / Triton), as the unmodified tritonclient.http calls them."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.api import examples as ex
from service.api.body import read_body
from service.api.deps import (
    VERSION_PARAMETER,
    ModelDep,
    RepositoryDep,
    leased_model,
    path_version,
    request_deadline,
)
from service.errors import InvalidInput, ModelNotReady
from service.lifecycle import Lifecycle
from service.protocol.infer import decode_request, encode_response, parse_json, split_body
from service.protocol.schemas import (
    ErrorBody,
    InferRequest,
    InferResponse,
    Liveness,
    ModelConfigView,
    ModelMetadata,
    ModelReadiness,
    Readiness,
    ServerMetadata,
)
from service.responses import OrjsonResponse
from service.runtime.model import ServedModel
from service.settings import Settings

router = APIRouter(tags=["Open Inference Protocol v2"])
infer_router = APIRouter(tags=["Open Inference Protocol v2"])
"""The inference routes alone: the app matches them first, since routes are tried in order, one by one."""

SHUTTING_DOWN = "shutting down"
EXTENSIONS = [
    "binary_tensor_data",
    "classification",
    "model_repository",
    "model_configuration",
    "statistics",
]
PLATFORM = "onnxruntime_onnx"


def batching_errors() -> dict[int | str, dict[str, Any]]:
    """OpenAPI text for the answers the batcher gives: a full queue, a passed deadline, a failed run."""
    texts = {
        500: ("The model run failed (the batch's requests all get this)", "model execution failed "
              "(error id 5f0c2a9e41d7b3c6); the server log has the details"),
        503: ("Queue full (sent with Retry-After), or the model is not ready",
              "queue full (256 requests waiting); retry after 0.180 s"),
        504: ("The request's deadline passed while it was queued; it never ran",
              "deadline exceeded after waiting 30000.0 ms in the queue"),
    }  # fmt: skip
    return {
        status: {"description": text, "model": ErrorBody, "content": ex.json_content({"error": example})}
        for status, (text, example) in texts.items()
    }


def server_version() -> str:
    try:
        return version("nnserve")
    except PackageNotFoundError:
        return "unknown"


@router.get("/v2", responses=ex.ok(ex.SERVER_METADATA, ServerMetadata))
async def server_metadata() -> Response:
    """Server name, version and the protocol extensions it supports."""
    return OrjsonResponse({"name": "nnserve", "version": server_version(), "extensions": EXTENSIONS})


@router.get("/v2/health/live", responses=ex.ok({"live": True}, Liveness))
async def live() -> Response:
    """200 while the process answers at all."""
    return OrjsonResponse({"live": True})


@router.get(
    "/v2/health/ready",
    responses={
        **ex.ok({"ready": True}, Readiness),
        503: {"description": "Not ready", "model": Readiness, "content": ex.json_content(ex.NOT_READY)},
    },
)
async def ready(request: Request, repository: RepositoryDep) -> Response:
    """200 once every model that should load has loaded (NNSERVE_STRICT_READINESS), until shutdown begins;
    else 503 with the reasons ("shutting down" from the first SIGTERM on)."""
    lifecycle: Lifecycle = request.app.state.lifecycle
    if lifecycle.draining:
        return OrjsonResponse({"ready": False, "reason": SHUTTING_DOWN}, status_code=503)
    state = repository.readiness()
    if state.ready:
        return OrjsonResponse({"ready": True})
    return OrjsonResponse({"ready": False, "reason": state.reason, "models": state.models}, status_code=503)


def _tensors(specs: Any) -> list[dict[str, Any]]:
    return [{"name": s.name, "datatype": s.datatype, "shape": s.shape} for s in specs]


@router.get("/v2/models/{name}", responses={**ex.ok(ex.MODEL_METADATA, ModelMetadata), **ex.errors(404, 503)})
@router.get(
    "/v2/models/{name}/versions/{version}",
    responses={**ex.ok(ex.MODEL_METADATA, ModelMetadata), **ex.errors(404, 503)},
    openapi_extra=VERSION_PARAMETER,
)
async def model_metadata(model: ModelDep, repository: RepositoryDep) -> Response:
    """Inputs, outputs, served versions, task and the execution provider actually in use."""
    return OrjsonResponse(
        {
            "name": model.name,
            "versions": [str(v) for v in sorted(repository.entry(model.name).served)],
            "platform": PLATFORM,
            "inputs": _tensors(model.inputs),
            "outputs": _tensors(model.outputs),
            "task": model.config.task,
            "provider": model.provider,
            "providers": model.providers,
        }
    )


_MODEL_NOT_READY = {"name": "digits-ae", "ready": False, "reason": "model 'digits-ae' is not ready: unloaded"}
_MODEL_READY_DOCS: dict[int | str, dict[str, Any]] = {
    **ex.ok({"name": "digits-cnn", "ready": True}, ModelReadiness),
    **ex.errors(400, 404),
    503: {
        "description": "Not ready (loading, failed to load, unloaded), with the reason",
        "model": ModelReadiness,
        "content": ex.json_content(_MODEL_NOT_READY),
    },
}


@router.get("/v2/models/{name}/ready", responses=_MODEL_READY_DOCS)
@router.get("/v2/models/{name}/versions/{version}/ready", responses=_MODEL_READY_DOCS, openapi_extra=VERSION_PARAMETER)
async def model_ready(name: str, request: Request, repository: RepositoryDep) -> Response:
    """200 when the model (version) can serve; 503 with the reason when it cannot."""
    try:
        repository.lookup(name, path_version(request))
    except ModelNotReady as exc:
        return OrjsonResponse({"name": name, "ready": False, "reason": str(exc)}, status_code=503)
    return OrjsonResponse({"name": name, "ready": True})


@router.get(
    "/v2/models/{name}/config", responses={**ex.ok(ex.MODEL_CONFIG, ModelConfigView), **ex.errors(404, 503)}
)
@router.get(
    "/v2/models/{name}/versions/{version}/config",
    responses={**ex.ok(ex.MODEL_CONFIG, ModelConfigView), **ex.errors(404, 503)},
    openapi_extra=VERSION_PARAMETER,
)
async def model_config(model: ModelDep) -> Response:
    """Triton-style model configuration (as Triton's tools read it), plus nnserve's own config.yaml values."""

    def tensors(specs: Any) -> list[dict[str, Any]]:
        return [{"name": s.name, "data_type": f"TYPE_{s.datatype}", "dims": s.shape} for s in specs]

    return OrjsonResponse(
        {
            "name": model.name,
            "platform": PLATFORM,
            "backend": "onnxruntime",
            "max_batch_size": 0,
            "input": tensors(model.inputs),
            "output": tensors(model.outputs),
            "nnserve": model.config.model_dump(mode="json", exclude_none=True),
        }
    )


_INFER_DOCS: dict[str, Any] = {
    "responses": {**ex.ok(ex.INFER_RESPONSE, InferResponse), **ex.errors(400, 404, 413), **batching_errors()},
    "openapi_extra": ex.request_body(
        {"json": ex.INFER_REQUEST, "classification": ex.INFER_CLASSIFICATION_REQUEST},
        schema=InferRequest.model_json_schema(),
    ),
}


@infer_router.post("/v2/models/{name}/infer", **_INFER_DOCS)
@infer_router.post(
    "/v2/models/{name}/versions/{version}/infer",
    responses=_INFER_DOCS["responses"],
    openapi_extra={**_INFER_DOCS["openapi_extra"], **VERSION_PARAMETER},
)
async def infer(request: Request, name: str) -> Response:
    """Run the model on JSON tensors, or on binary tensors after the JSON (`Inference-Header-Content-Length`).

    Outputs come back as JSON, or as binary after the JSON when requested (`binary_data` per output,
    `binary_data_output` for all); `classification: N` returns the top N as `"value:index:label"`.
    A deadline (`parameters.timeout` in microseconds, as tritonclient sends it, or the
    `X-Request-Timeout-Ms` header) answers 504 when the request is still queued at that time.
    """
    settings: Settings = request.app.state.settings
    with leased_model(request, name) as model:
        body = await read_body(request)
        framing = request.headers.get("inference-header-content-length")
        finite = not settings.allow_non_finite and model.config.task != "tensor"
        decoded = decode_request(body, framing, model.inputs, model.outputs, finite=finite)
        deadline = request_deadline(request, _parameters_timeout_s(body, framing))
        results = await model.infer(decoded.inputs, deadline=deadline)
    payload, json_length = encode_response(
        model.name, model.version, decoded.id, results, decoded.outputs, _labels(model)
    )
    if json_length is None:
        return Response(payload, media_type="application/json")
    return Response(
        payload,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(json_length)},
    )


def _parameters_timeout_s(body: bytes, header_length: str | None) -> float | None:
    """`parameters.timeout` of a request `decode_request` accepted (microseconds; 0 = none, as in Triton).

    The JSON is read a second time only when it mentions a timeout at all, which few requests do.
    """
    head, _ = split_body(body, header_length)
    if b'"timeout"' not in head:
        return None
    parameters = parse_json(head).get("parameters") or {}
    value = parameters.get("timeout") if isinstance(parameters, dict) else None
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput(f"parameters.timeout: expected microseconds as an integer >= 0, got {value!r}")
    return value / 1_000_000 if value else None


def _labels(model: ServedModel) -> dict[str, list[str]]:
    """Class labels by output name, for the classification extension."""
    settings = model.config.classification
    return {settings.probabilities: settings.labels} if settings is not None else {}
