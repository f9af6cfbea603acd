"""Open Inference Protocol v2 routes (KServe v2 / Triton), as the unmodified tritonclient.http calls them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.api import examples as ex
from service.api.deps import (
    VERSION_PARAMETER,
    ModelDep,
    RepositoryDep,
    path_version,
)
from service.api.infer import run_infer
from service.errors import ModelNotReady
from service.lifecycle import Lifecycle
from service.middleware import request_info
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
from service.protocol.views import model_config_view, model_metadata_view, server_metadata_view
from service.responses import OrjsonResponse

router = APIRouter(tags=["Open Inference Protocol v2"])
infer_router = APIRouter(tags=["Open Inference Protocol v2"])
"""The inference routes alone: the app matches them first, since routes are tried in order, one by one."""

SHUTTING_DOWN = "shutting down"


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


@router.get("/v2", responses=ex.ok(ex.SERVER_METADATA, ServerMetadata))
async def server_metadata() -> Response:
    """Server name, version and the protocol extensions it supports."""
    return OrjsonResponse(server_metadata_view())


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
    else 503 with `ready: false`, the reasons ("shutting down" from the first SIGTERM on) and `error`.

    The v2 protocol defines only the 200 answer; a Kubernetes probe and tritonclient's `is_server_ready`
    read any other status as not ready (docs/serving.md, "Ready endpoints", says why 503 and not 400)."""
    lifecycle: Lifecycle = request.app.state.lifecycle
    if lifecycle.draining:
        return _not_ready({"ready": False, "reason": SHUTTING_DOWN})
    state = repository.readiness()
    if state.ready:
        return OrjsonResponse({"ready": True})
    return _not_ready({"ready": False, "reason": state.reason, "models": state.models})


def _not_ready(body: dict[str, Any]) -> Response:
    """503 with the protocol's body (`ready: false`), Triton's and KServe's `error` key (the reason) and
    `Retry-After`, as a request to a model that is not ready gets."""
    headers = {"Retry-After": str(ModelNotReady.retry_after_s)}
    return OrjsonResponse({**body, "error": body["reason"]}, status_code=503, headers=headers)


@router.get("/v2/models/{name}", responses={**ex.ok(ex.MODEL_METADATA, ModelMetadata), **ex.errors(404, 503)})
@router.get(
    "/v2/models/{name}/versions/{version}",
    responses={**ex.ok(ex.MODEL_METADATA, ModelMetadata), **ex.errors(404, 503)},
    openapi_extra=VERSION_PARAMETER,
)
async def model_metadata(model: ModelDep, repository: RepositoryDep) -> Response:
    """Inputs, outputs, served versions, task and the execution provider actually in use."""
    return OrjsonResponse(model_metadata_view(model, repository.entry(model.name).served))


_NOT_READY_REASON = "Request for unknown model: 'digits-ae' has no available versions: unloaded"
_MODEL_NOT_READY = {"name": "digits-ae", "ready": False, "reason": _NOT_READY_REASON, "error": _NOT_READY_REASON}
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
    """200 when the model (version) can serve; 503 with `ready: false` and the reason when it cannot;
    404 for a model or version the repository does not have."""
    try:
        repository.lookup(name, path_version(request))
    except ModelNotReady as exc:
        return _not_ready({"name": name, "ready": False, "reason": str(exc)})
    return OrjsonResponse({"name": name, "ready": True})


@router.get("/v2/models/{name}/config", responses={**ex.ok(ex.MODEL_CONFIG, ModelConfigView), **ex.errors(404, 503)})
@router.get(
    "/v2/models/{name}/versions/{version}/config",
    responses={**ex.ok(ex.MODEL_CONFIG, ModelConfigView), **ex.errors(404, 503)},
    openapi_extra=VERSION_PARAMETER,
)
async def model_config(model: ModelDep) -> Response:
    """Triton-style model configuration (as Triton's tools read it), plus nnserve's own config.yaml values."""
    return OrjsonResponse(model_config_view(model))


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
    answer = await run_infer(
        request.app.state.repository,
        request.app.state.settings,
        request_info(request.scope),
        name,
        request.path_params.get("version"),
        request.headers,
        await request.body(),
    )
    headers = None if answer.json_length is None else {"Inference-Header-Content-Length": str(answer.json_length)}
    return Response(answer.body, media_type=answer.media_type, headers=headers)
