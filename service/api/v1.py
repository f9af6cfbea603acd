"""Task routes, KServe v1 / TF-Serving style: `:predict` with instances or uploaded files; model status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.responses import Response

from service.api import examples as ex
from service.api.body import MULTIPART, check_media_type, read_body
from service.api.deps import VERSION_PARAMETER, RepositoryDep, leased_model, request_deadline
from service.api.pictures import picture_budget
from service.api.v2 import batching_errors
from service.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from service.protocol.limits import check_finite, check_text_length
from service.protocol.predict import (
    ModelStatus,
    PredictRequest,
    PredictResponse,
    check_count,
    parse_predict_request,
    parse_top_k,
)
from service.responses import OrjsonResponse
from service.settings import Settings
from service.tasks.classification import DEFAULT_TOP_K
from service.tasks.image_generation import GenerationOptions
from service.tasks.pipelines import Instance, Pipelines, preprocess_in_thread

router = APIRouter(tags=["Task endpoints (v1)"])
predict_router = APIRouter(tags=["Task endpoints (v1)"])
"""The `:predict` routes alone: the app matches them first, since routes are tried in order, one by one."""

INLINE_PREPROCESS_BYTES = 64 * 1024
"""Smaller JSON bodies without pictures (text, numbers) are preprocessed on the event loop: a thread hop
costs more than that. Pictures always go to a thread: a small file can hold millions of pixels."""


@router.get("/v1/models/{name}", responses={**ex.ok(ex.MODEL_STATUS, ModelStatus), **ex.errors(404, 503)})
async def model_status(name: str, repository: RepositoryDep) -> Response:
    """Every version of the model with its state, the reason when it is not ready, and the provider in use."""
    entry = repository.entry(name)
    versions: list[dict[str, Any]] = []
    for status in entry.status:
        served = entry.served.get(status.version) if status.version is not None else None
        versions.append(
            {
                "version": "" if status.version is None else str(status.version),
                "state": status.state.value,
                "reason": status.reason,
                "provider": served.provider if served is not None else None,
            }
        )
    task = entry.config.task if entry.config is not None else None
    return OrjsonResponse({"name": name, "ready": bool(entry.served), "task": task, "versions": versions})


async def _uploaded_instances(request: Request, limit: int) -> tuple[list[Instance], int]:
    """Files of a multipart upload (any field name) as picture instances, plus an optional `top_k` field."""
    instances: list[Instance] = []
    k = DEFAULT_TOP_K
    if request.headers.get("content-encoding", "identity").strip().lower() != "identity":
        raise UnsupportedMediaType(
            "Content-Encoding: not read on multipart uploads (image files are compressed already); "
            "send the form uncompressed, or JSON with a compressed body"
        )
    try:
        async with request.form(max_files=limit, max_fields=16) as form:
            for field, value in form.multi_items():
                if isinstance(value, UploadFile):
                    where = f"files[{len(instances)}] {value.filename!r}"
                    instances.append(Instance(where, await value.read()))
                elif field == "top_k":
                    k = parse_top_k(value)
                else:
                    raise InvalidInput(f"form field {field!r}: unknown; send image files and optionally top_k")
    except HTTPException as exc:  # Starlette's parser refuses the file past max_files with a plain 400
        if str(exc.detail).startswith("Too many files"):
            raise PayloadTooLarge(f"files: more than max_instances ({limit}) in one form") from None
        raise
    if not instances:
        raise InvalidInput("files: no file in the form; send one or more, e.g. curl -F file=@digit.png")
    check_count(instances, limit, "files")
    return instances, k


_PREDICT_DOCS: dict[str, Any] = {
    "responses": {
        200: {
            "description": "One prediction per instance",
            "model": PredictResponse,
            "content": {
                "application/json": {
                    "examples": {
                        "classifier": {"value": ex.PREDICT_CLASS_RESPONSE},
                        "anomaly": {"value": ex.PREDICT_ANOMALY_RESPONSE},
                        "image generation": {"value": ex.PREDICT_GENERATION_RESPONSE},
                    }
                }
            },
        },
        **ex.errors(400, 404, 413),
        **batching_errors(),
    },
    "openapi_extra": ex.request_body(
        {
            "image_b64": ex.PREDICT_IMAGE,
            "pixels": ex.PREDICT_PIXELS,
            "text": ex.PREDICT_TEXT,
            "table_rows": ex.PREDICT_TABLE,
            "image_generation": ex.PREDICT_GENERATION,
        },
        multipart=True,
        schema=PredictRequest.model_json_schema(),
    ),
}


@predict_router.post("/v1/models/{name}:predict", **_PREDICT_DOCS)
@predict_router.post(
    "/v1/models/{name}/versions/{version}:predict",
    responses=_PREDICT_DOCS["responses"],
    openapi_extra={**_PREDICT_DOCS["openapi_extra"], **VERSION_PARAMETER},
)
async def predict(request: Request, name: str) -> Response:
    """Classify images, text or table rows (label, score, top_k), score anomalies (score, threshold,
    is_anomaly), or generate images (`{"label", "seed", "count"}` instances; PNGs, optionally raw pixels).

    JSON `{"instances": [...]}`, or `multipart/form-data` with one or more image files
    (`curl -F file=@digit.png`); `top_k` (default 3) as `parameters.top_k` or a form field.
    The `X-Request-Timeout-Ms` header sets a deadline: 504 when the request is still queued then.
    """
    settings: Settings = request.app.state.settings
    pipelines: Pipelines = request.app.state.pipelines
    # The body is read and parsed before the version is leased: a client that stalls its upload must not
    # keep a version that a hot reload retired (and its sessions) alive for as long as it likes.
    if check_media_type(request.headers, multipart=True) == MULTIPART:
        instances, k = await _uploaded_instances(request, settings.max_instances)
        options = GenerationOptions()
        inline = False
    else:
        body = await read_body(request)
        instances, parameters = parse_predict_request(body, settings.max_instances)
        k, options = parameters.top_k, parameters.generation()
        inline = len(body) < INLINE_PREPROCESS_BYTES and not any(isinstance(i.value, dict) for i in instances)
    for instance in instances:
        check_text_length(instance.value, instance.where, settings.max_text_chars)
    deadline = request_deadline(request)
    with leased_model(request, name) as model:
        pipeline = pipelines.get(model).for_request(options)
        # Decoding pictures is CPU work that releases the GIL: off the event loop, like inference.
        if inline:
            inputs = pipeline.preprocess(instances)
        else:
            inputs = await preprocess_in_thread(pipeline, instances, picture_budget(request, model, deadline))
        if not settings.allow_non_finite and not pipeline.missing_as_nan:
            check_finite(inputs, [i.where for i in instances])
        outputs = await model.infer(inputs, deadline=deadline)
    return OrjsonResponse(
        {
            "model_name": model.name,
            "model_version": str(model.version),
            "predictions": pipeline.postprocess(outputs, k),
        }
    )
