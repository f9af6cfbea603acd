"""Dependencies shared by the routes: the app's singletons, the served model (with its lease), the API key."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request

from service.errors import InvalidInput, Unauthorized
from service.repository.registry import ModelRepository
from service.runtime.model import ServedModel
from service.settings import Settings
from service.tasks.pipelines import Pipelines

VERSION_PARAMETER: dict[str, Any] = {
    "parameters": [
        {
            "name": "version",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    ]
}
"""OpenAPI text for `{version}`: `served_model` reads it from the path, so one function serves both routes."""


async def get_repository(request: Request) -> ModelRepository:
    repository: ModelRepository = request.app.state.repository
    return repository


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_pipelines(request: Request) -> Pipelines:
    pipelines: Pipelines = request.app.state.pipelines
    return pipelines


RepositoryDep = Annotated[ModelRepository, Depends(get_repository)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
PipelinesDep = Annotated[Pipelines, Depends(get_pipelines)]


def path_version(request: Request) -> int | None:
    """The `{version}` path segment as a number, or None on the unversioned route."""
    raw = request.path_params.get("version")
    if raw is None:
        return None
    if not raw.isdigit():
        raise InvalidInput(f"version: expected a number, got {raw!r}")
    return int(raw)


async def served_model(request: Request, name: str) -> AsyncIterator[ServedModel]:
    """The version to run, leased until the response is done so a hot reload cannot close it mid-request.

    Async (like every dependency here) so FastAPI runs it on the event loop, not in a thread pool.
    """
    repository: ModelRepository = request.app.state.repository
    with repository.lease(name, path_version(request)) as model:
        yield model


ModelDep = Annotated[ServedModel, Depends(served_model)]


async def require_api_key(request: Request) -> None:
    """Repository changes need `Authorization: Bearer <key>` (or `X-API-Key`) when a key is configured."""
    settings: Settings = request.app.state.settings
    key = settings.api_key
    if key is None:
        return
    given = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix(
        "Bearer "
    )
    if not hmac.compare_digest(given.encode(), key.encode()):
        raise Unauthorized("Authorization: missing or wrong API key for the repository endpoints")
