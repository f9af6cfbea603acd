"""The app factory: one FastAPI app per Settings, wiring repository, pipelines, routes and error handling.

Models load in the background after start-up, so `/v2/health/live` answers at once and
`/v2/health/ready` turns 200 when loading is done (the usual liveness/readiness split).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from service.api import repository as repository_routes
from service.api import v1, v2
from service.errors import ServiceError, headers_for, status_for
from service.middleware import RequestContextMiddleware
from service.repository.registry import ModelRepository
from service.responses import OrjsonResponse, error_response
from service.settings import Settings
from service.tasks.pipelines import Pipelines

DESCRIPTION = """
Serves the ONNX models of a model repository through the **Open Inference Protocol v2** (works with the
unmodified `tritonclient.http`, including binary tensors) and task endpoints in **KServe v1** style
(`:predict` with JSON instances or uploaded image files). Errors are `{"error": "..."}` naming the field
and the bad value; every answer carries `X-Request-ID`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """A ready-to-serve app; `uvicorn --factory service.app:create_app` reads NNSERVE_* variables."""
    settings = settings or Settings()
    if not settings.repository.is_dir():
        raise FileNotFoundError(f"repository {settings.repository} is not a directory")
    pipelines = Pipelines()
    repository = ModelRepository(settings, prepare=pipelines.prepare)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(repository.load_all())
        try:
            yield
        finally:
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
            repository.close()

    app = FastAPI(
        title="nnserve",
        summary="ONNX models over the Open Inference Protocol v2 and KServe v1 task endpoints.",
        description=DESCRIPTION,
        version=v2.server_version(),
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
    )
    app.state.settings = settings
    app.state.repository = repository
    app.state.pipelines = pipelines
    app.include_router(v2.router)
    app.include_router(repository_routes.router)
    app.include_router(v1.router)
    _install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_request_bytes)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as `{"error": "..."}`; the status comes from the table in service.errors."""

    async def service_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError)
        return error_response(status_for(exc), str(exc), headers_for(exc))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:5]
        )
        return error_response(422, problems)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = exc.detail
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path}"
        return error_response(exc.status_code, str(message), dict(exc.headers or {}))

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
