"""GET /metrics: Prometheus text format, or OpenMetrics when the scraper asks for it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.api.deps import RepositoryDep
from service.metrics import Metrics
from service.repository.registry import ModelRepository

router = APIRouter()


# Not in the OpenAPI document, which describes the JSON API for clients; the metric names and labels
# are documented in docs/batching.md.
@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, repository: RepositoryDep) -> Response:
    """Request, queue, inference and batch-size metrics per model and version, plus process metrics."""
    registry: Metrics = request.app.state.metrics
    # Readiness is read from the repository at scrape time, so loads, unloads and hot swaps done by
    # any route (or at start-up) are never missed and never stale.
    registry.sync_model_ready(model_states(repository))
    body, content_type = registry.render(request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type})


def served_versions(repository: ModelRepository) -> dict[tuple[str, str], str]:
    """(model, version) -> execution provider of every version serving now."""
    return {
        (entry.name, str(version)): model.provider
        for entry in repository.entries()
        for version, model in entry.served.items()
    }


def model_states(repository: ModelRepository) -> dict[tuple[str, str], tuple[str, bool]]:
    """(model, version) -> (provider, ready) for `nnserve_model_ready`.

    Every version the repository wants served is listed: ready ones with their provider, loading or
    failed ones as not ready (version "" when the whole model failed, e.g. a bad config.yaml). Models
    unloaded on purpose are left out, so an alert on `nnserve_model_ready == 0` means trouble.
    """
    states: dict[tuple[str, str], tuple[str, bool]] = {}
    for entry in repository.entries():
        if not entry.wanted:
            continue
        for status in entry.status:
            model = entry.served.get(status.version) if status.version is not None else None
            version = "" if status.version is None else str(status.version)
            states[(entry.name, version)] = (model.provider, True) if model is not None else ("", False)
    return states
