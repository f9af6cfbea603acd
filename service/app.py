"""The app factory: one FastAPI app per Settings, wiring repository, batching, metrics, routes and errors.

Models load in the background after start-up, so `/v2/health/live` answers at once and
`/v2/health/ready` turns 200 when loading is done (the usual liveness/readiness split). Each version
gets its batchers' metrics and statistics hooks before it serves (the repository's prepare hook), and
on shutdown every version's batchers stop after answering what they hold. The gRPC endpoint
(service.grpc, NNSERVE_GRPC_PORT) starts and stops in the same lifespan, on the same loop. Around the routes: access
control by API key, CORS when origins are configured, and the request context (IDs, body limit, metrics,
requests in flight); docs/hardening.md has the limits and the shutdown sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException
from starlette.responses import Response

from service.access import AccessControl
from service.api import generate, openai, openapi, stats, ui, v1, v2
from service.api import metrics as metrics_routes
from service.api import repository as repository_routes
from service.api.fastpath import InferenceFastPath
from service.batching import BatcherError
from service.compression import ResponseCompression
from service.errors import ServiceError
from service.generation.registry import GenerationEngines
from service.lifecycle import Lifecycle
from service.metrics import Metrics
from service.middleware import LOOP_STATE, RequestContextMiddleware
from service.protocol.views import server_version
from service.repository.registry import ModelRepository
from service.responses import OrjsonResponse, domain_error_response, error_response
from service.runtime.collector import freeze_long_lived
from service.runtime.memory import limit_arenas
from service.runtime.model import ServedModel
from service.settings import Settings
from service.statistics import Statistics
from service.tasks.pipelines import Pipelines

log = logging.getLogger(__name__)

CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "Content-Encoding",
    "X-API-Key",
    "X-Request-ID",
    "X-Request-Timeout-Ms",
    "Inference-Header-Content-Length",
]
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
"""FastAPI's native OpenTelemetry, all off: it then stops looking for a provider on every request."""
CORS_RESPONSE_HEADERS = ["X-Request-ID", "Retry-After", "Inference-Header-Content-Length"]

DESCRIPTION = """
Serves the ONNX models of a model repository through the **Open Inference Protocol v2** (works with the
unmodified `tritonclient.http`, including binary tensors) and task endpoints in **KServe v1** style
(`:predict` with JSON instances or uploaded image files). Requests to a model are batched dynamically.
Errors are `{"error": "..."}` naming the field and the bad value; every answer carries `X-Request-ID`.
Prometheus metrics at `/metrics`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """A ready-to-serve app; `uvicorn --factory service.app:create_app` reads NNSERVE_* variables."""
    settings = settings or Settings()
    if not settings.repository.is_dir():
        raise FileNotFoundError(f"repository {settings.repository} is not a directory")
    limit_arenas(settings.malloc_arena_max)
    pipelines = Pipelines(
        max_image_pixels=settings.max_image_pixels, max_generated_images=settings.max_generated_images
    )
    metrics = Metrics()
    lifecycle = Lifecycle()
    metrics.track_in_flight(lambda: lifecycle.in_flight)
    statistics = Statistics()
    default_timeout_s = settings.request_timeout_ms / 1000 or None
    generation_engines = GenerationEngines()

    def prepare(model: ServedModel) -> None:
        """Runs for each new version before it serves (in the loading thread)."""
        pipelines.prepare(model)
        generation_engines.prepare(model)
        version = str(model.version)
        model.configure_batching(
            default_timeout_s=default_timeout_s,
            observers=[metrics.batch_observer(model.name, version), statistics.model(model.name, version)],
            isolate_failures=settings.isolate_failed_batches,
            inline=settings.inline_inference,
        )

    repository = ModelRepository(settings, prepare=prepare)

    async def load_then_freeze() -> None:
        await repository.load_all()
        frozen = freeze_long_lived()
        log.info("gc_frozen", extra={"objects": frozen})

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        grpc_server = await _start_grpc(app) if settings.grpc_port else None
        loading = asyncio.create_task(load_then_freeze())
        try:
            yield {LOOP_STATE: asyncio.get_running_loop()}
        finally:
            lifecycle.begin_drain()  # already draining when served by `nnserve serve` (service.server)
            if grpc_server is not None:
                from service.grpc.server import stop_grpc

                await stop_grpc(grpc_server, settings.shutdown_grace_s)
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
            served = [model for entry in repository.entries() for model in entry.served.values()]
            await generation_engines.close()
            repository.close()
            await asyncio.gather(*(model.wait_closed() for model in served))

    app = FastAPI(
        title="nnserve",
        summary="ONNX models over the Open Inference Protocol v2 and KServe v1 task endpoints.",
        description=DESCRIPTION,
        version=server_version(),
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
        telemetry=None if settings.opentelemetry else NO_TELEMETRY,
        redirect_slashes=False,  # Starlette's redirect echoes the Host header into Location; a slash is a 404
    )
    app.state.settings = settings
    app.state.repository = repository
    app.state.pipelines = pipelines
    app.state.metrics = metrics
    app.state.statistics = statistics
    app.state.generation_engines = generation_engines
    app.state.lifecycle = lifecycle
    for router in routers(settings):
        app.include_router(router)
    _install_error_handlers(app)
    openapi.install(app, settings)
    # Added last = runs first: request context (IDs, limits, metrics), then CORS, then access control,
    # then response compression (Accept-Encoding), then the inference fast path, which answers v2 infer
    # requests before FastAPI's own stack.
    app.add_middleware(InferenceFastPath, repository=repository, settings=settings)
    app.add_middleware(ResponseCompression, min_bytes=settings.compress_min_bytes, level=settings.compress_level)
    app.add_middleware(AccessControl, settings=settings)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_RESPONSE_HEADERS,
            max_age=600,
        )
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_request_bytes,
        metrics=metrics,
        lifecycle=lifecycle,
        access_log=settings.access_log,
    )
    return app


async def _start_grpc(app: FastAPI) -> Any:
    """The gRPC endpoint on this loop, over the app's own repository, batchers and metrics (service.grpc).

    Imported here, not at the top: a server with NNSERVE_GRPC_PORT=0 never loads grpcio.
    """
    from service.grpc.calls import DataPlane
    from service.grpc.server import start_grpc

    state = app.state
    plane = DataPlane(
        state.settings, state.repository, state.metrics, state.statistics, state.lifecycle, state.generation_engines
    )
    return await start_grpc(plane)


def routers(settings: Settings) -> list[APIRouter]:
    """Every route group, in matching order.

    The inference routes come first because matching walks the routes one by one, at a cost per route
    that shows in every request; `/v2/models/stats` must come before `/v2/models/{name}`.
    """
    return [
        v2.infer_router,
        v1.predict_router,
        stats.router,
        v2.router,
        repository_routes.router,
        v1.router,
        generate.router,
        openai.router,
        metrics_routes.router,
        ui.create_router(settings.ui),
    ]


def _install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as `{"error": "..."}`; the status comes from the table in service.errors."""

    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError | BatcherError)
        return domain_error_response(exc, request.url.path)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:5])
        return error_response(422, problems)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = exc.detail
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
            if request.url.path.endswith("/") and request.url.path != "/":
                message += " (paths take no trailing slash)"
        elif exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path}"
        return error_response(exc.status_code, str(message), dict(exc.headers or {}))

    app.add_exception_handler(ServiceError, domain_error)
    app.add_exception_handler(BatcherError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
