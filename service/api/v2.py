"""Open Inference Protocol v2 routes (KServe v2 / Triton), as the unmodified tritonclient.http calls them."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.api import examples as ex
from service.api.deps import VERSION_PARAMETER, ModelDep, RepositoryDep, SettingsDep, path_version
from service.errors import ModelNotReady
from service.protocol.body import decompress
from service.protocol.infer import decode_request, encode_response
from service.protocol.schemas import (
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

router = APIRouter(tags=["Open Inference Protocol v2"])

EXTENSIONS = ["binary_tensor_data", "classification", "model_repository", "model_configuration"]
PLATFORM = "onnxruntime_onnx"


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
async def ready(repository: RepositoryDep) -> Response:
    """200 once every model that should load has loaded (NNSERVE_STRICT_READINESS); else 503 with reasons."""
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


@router.get(
    "/v2/models/{name}/ready",
    responses={**ex.ok({"name": "digits-cnn", "ready": True}, ModelReadiness), **ex.errors(404)},
)
@router.get(
    "/v2/models/{name}/versions/{version}/ready",
    responses={**ex.ok({"name": "digits-cnn", "ready": True}, ModelReadiness), **ex.errors(404)},
    openapi_extra=VERSION_PARAMETER,
)
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
    "responses": {**ex.ok(ex.INFER_RESPONSE, InferResponse), **ex.errors(400, 404, 413, 503)},
    "openapi_extra": ex.request_body(
        {"json": ex.INFER_REQUEST, "classification": ex.INFER_CLASSIFICATION_REQUEST},
        schema=InferRequest.model_json_schema(),
    ),
}


@router.post("/v2/models/{name}/infer", **_INFER_DOCS)
@router.post(
    "/v2/models/{name}/versions/{version}/infer",
    responses=_INFER_DOCS["responses"],
    openapi_extra={**_INFER_DOCS["openapi_extra"], **VERSION_PARAMETER},
)
async def infer(request: Request, model: ModelDep, settings: SettingsDep) -> Response:
    """Run the model on JSON tensors, or on binary tensors after the JSON (`Inference-Header-Content-Length`).

    Outputs come back as JSON, or as binary after the JSON when requested (`binary_data` per output,
    `binary_data_output` for all); `classification: N` returns the top N as `"value:index:label"`.
    """
    body = decompress(
        await request.body(), request.headers.get("content-encoding"), settings.max_request_bytes
    )
    decoded = decode_request(
        body, request.headers.get("inference-header-content-length"), model.inputs, model.outputs
    )
    results = await model.infer(decoded.inputs)
    payload, header_length = encode_response(
        model.name, model.version, decoded.id, results, decoded.outputs, _labels(model)
    )
    if header_length is None:
        return Response(payload, media_type="application/json")
    return Response(
        payload,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(header_length)},
    )


def _labels(model: ServedModel) -> dict[str, list[str]]:
    """Class labels by output name, for the classification extension."""
    settings = model.config.classification
    return {settings.probabilities: settings.labels} if settings is not None else {}
