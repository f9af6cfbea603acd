"""Shared by the routes: the app's singletons, the served model (with its lease), deadlines."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import Headers

from service.errors import InvalidInput, ServiceError
from service.middleware import RequestInfo, request_info
from service.protocol.limits import ascii_integer, shown
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
            "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
        }
    ]
}
"""OpenAPI text for `{version}`: `served_model` reads it from the path, so one function serves both routes."""

VERSION_DIGITS = 18
"""A version folder's number fits a signed 64-bit integer (what the v2 protocol's clients send)."""


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


def parse_version(raw: str | None) -> int | None:
    """A `{version}` path segment as a number, or None on the unversioned route."""
    if raw is None:
        return None
    version = ascii_integer(raw, VERSION_DIGITS)
    if version is None:
        raise InvalidInput(f"version: expected a number of 1 to {VERSION_DIGITS} ASCII digits, got {shown(raw)}")
    return version


def path_version(request: Request) -> int | None:
    return parse_version(request.path_params.get("version"))


@contextmanager
def leased_model(request: Request, name: str) -> Iterator[ServedModel]:
    """`lease` for a route: the app's repository, the request's info and `{version}` path segment.

    The inference routes use this directly: FastAPI's machinery for generator dependencies costs more
    per request than the rest of the routing.
    """
    repository: ModelRepository = request.app.state.repository
    with lease(repository, request_info(request.scope), name, request.path_params.get("version")) as model:
        yield model


@contextmanager
def lease(repository: ModelRepository, info: RequestInfo, name: str, version: str | None) -> Iterator[ServedModel]:
    """The version to run, leased for the block so a hot reload cannot close it mid-request.

    Also labels the request's metrics with the model and version, but only with names the repository
    knows, so clients cannot create label values.
    """
    try:
        model = repository.lookup(name, parse_version(version))
    except ServiceError:
        if any(entry.name == name for entry in repository.entries()):
            info.model = name
        raise
    info.model, info.version = model.name, str(model.version)
    model.acquire()
    try:
        yield model
    finally:
        model.release()


async def served_model(request: Request, name: str) -> AsyncIterator[ServedModel]:
    """`leased_model` as a dependency, leased until the response is done.

    Async (like every dependency here) so FastAPI runs it on the event loop, not in a thread pool.
    """
    with leased_model(request, name) as model:
        yield model


ModelDep = Annotated[ServedModel, Depends(served_model)]

TIMEOUT_HEADER = "x-request-timeout-ms"


def request_deadline(request: Request, protocol_timeout_s: float | None = None) -> float | None:
    """`deadline` for a route."""
    return deadline(request.headers, request_info(request.scope), protocol_timeout_s)


def deadline(headers: Headers, info: RequestInfo, protocol_timeout_s: float | None = None) -> float | None:
    """The request's own deadline (time.monotonic()), counted from its arrival; None = the model's default.

    From the `X-Request-Timeout-Ms` header and/or the protocol's own field (v2 `parameters.timeout`);
    when both are given the shorter wins.
    """
    header_s = _header_timeout_s(headers)
    if header_s is None and protocol_timeout_s is None:
        return None
    return info.received_at + min(t for t in (header_s, protocol_timeout_s) if t is not None)


def _header_timeout_s(headers: Headers) -> float | None:
    raw = headers.get(TIMEOUT_HEADER)
    if raw is None:
        return None
    try:
        milliseconds = float(raw)
    except ValueError:
        milliseconds = math.nan
    if not (milliseconds > 0 and math.isfinite(milliseconds)):
        raise InvalidInput(f"X-Request-Timeout-Ms: expected a positive number of milliseconds, got {raw!r}")
    return milliseconds / 1000
