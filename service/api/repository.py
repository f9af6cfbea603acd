"""Model repository extension: index, and load/unload with hot swap.

Load and unload need a full-access API key once any key is configured; `service.access` checks it before
these routes run (docs/hardening.md).
"""

from __future__ import annotations

from typing import TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from service.api import examples as ex
from service.api.body import read_body
from service.api.deps import RepositoryDep
from service.errors import InvalidInput
from service.protocol.infer import describe_validation_error, parse_json
from service.protocol.schemas import IndexRequest, IndexRow, LoadRequest
from service.repository.upload import deploy, read_load_parameters
from service.responses import OrjsonResponse
from service.settings import Settings

router = APIRouter(tags=["Model repository"])
Body = TypeVar("Body", bound=BaseModel)


async def _optional_body(request: Request, schema: type[Body]) -> Body:
    """tritonclient sends these endpoints an empty body, `{}` or `{"parameters": {...}}`."""
    raw = await read_body(request)
    try:
        return schema.model_validate(parse_json(raw) if raw.strip() else {})
    except ValidationError as exc:
        raise InvalidInput(describe_validation_error(exc)) from None


@router.post(
    "/v2/repository/index",
    responses=ex.ok(ex.INDEX, list[IndexRow]),
    openapi_extra=ex.request_body(
        {"all": {}, "ready_only": {"ready": True}}, schema=IndexRequest.model_json_schema(), required=False
    ),
)
async def index(request: Request, repository: RepositoryDep) -> Response:
    """Every model on disk with each version's state (READY, LOADING, UNAVAILABLE) and the reason."""
    body = await _optional_body(request, IndexRequest)
    return OrjsonResponse(repository.index(ready_only=body.ready))


@router.post(
    "/v2/repository/models/{name}/load",
    response_class=Response,
    responses={200: {"description": "Loaded (empty body)"}, **ex.errors(400, 403, 404, 413)},
    openapi_extra=ex.request_body(
        {
            "reload": {},
            "config override": {"parameters": {"config": '{"max_batch_size": 16}'}},
            "upload": {
                "parameters": {
                    "config": '{"max_batch_size": 8, "dynamic_batching": {"max_queue_delay_microseconds": 100}}',
                    "file:1/model.onnx": "<base64 of the ONNX file>",
                }
            },
        },
        schema=LoadRequest.model_json_schema(),
        required=False,
    ),
)
async def load(name: str, request: Request, repository: RepositoryDep) -> Response:
    """(Re)load a model: new versions swap in atomically; requests in flight finish on the old.

    Triton's parameters deploy over the API: `config` (a ModelConfig JSON string) overrides config.yaml,
    and `file:<version>/<name>` (base64) uploads the files that form the model folder; both are written
    into the repository before the load, and put back as they were if it fails (docs/serving.md).
    A load that yields nothing servable fails with 400 and leaves the served versions in place.
    """
    body = await _optional_body(request, LoadRequest)
    if body.parameters:
        settings: Settings = request.app.state.settings
        await deploy(repository, name, read_load_parameters(name, body.parameters, settings))
    else:
        await repository.load(name)
    return Response(status_code=200)


@router.post(
    "/v2/repository/models/{name}/unload",
    response_class=Response,
    responses={200: {"description": "Unloaded (empty body)"}, **ex.errors(400, 404)},
    openapi_extra=ex.request_body(
        {"unload": {}, "tritonclient": {"parameters": {"unload_dependents": False}}},
        schema=LoadRequest.model_json_schema(),
        required=False,
    ),
)
async def unload(name: str, request: Request, repository: RepositoryDep) -> Response:
    """Stop serving a model; requests in flight finish first. It no longer counts against readiness."""
    await _optional_body(request, LoadRequest)
    await repository.unload(name)
    return Response(status_code=200)
