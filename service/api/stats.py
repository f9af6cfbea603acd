"""The v2 statistics extension: cumulative counts and times per model version, as Triton reports them.

Average batch size = `inference_count / execution_count`; `batch_stats` lists the batch sizes actually
executed. Only versions serving now are reported (PROTOCOLS.md section 4, docs/batching.md).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.api import examples as ex
from service.api.deps import VERSION_PARAMETER, RepositoryDep, path_version
from service.api.metrics import served_versions
from service.errors import unknown_version
from service.repository.registry import ModelRepository
from service.responses import OrjsonResponse
from service.statistics import Statistics

router = APIRouter(tags=["Open Inference Protocol v2"])

_EXAMPLE: dict[str, Any] = {
    "model_stats": [
        {
            "name": "digits-cnn",
            "version": "1",
            "last_inference": 1764078863787,
            "inference_count": 64,
            "execution_count": 3,
            "inference_stats": {
                "success": {"count": 64, "ns": 91_000_000},
                "fail": {"count": 0, "ns": 0},
                "queue": {"count": 64, "ns": 55_000_000},
                "compute_input": {"count": 64, "ns": 1_200_000},
                "compute_infer": {"count": 64, "ns": 33_000_000},
                "compute_output": {"count": 64, "ns": 800_000},
                "cache_hit": {"count": 0, "ns": 0},
                "cache_miss": {"count": 0, "ns": 0},
            },
            "response_stats": {},
            "memory_usage": [],
            "batch_stats": [
                {
                    "batch_size": 32,
                    "compute_input": {"count": 2, "ns": 40_000},
                    "compute_infer": {"count": 2, "ns": 1_000_000},
                    "compute_output": {"count": 2, "ns": 25_000},
                }
            ],
        }
    ]
}
_DOCS: dict[str, Any] = {"responses": {**ex.ok(_EXAMPLE), **ex.errors(404)}}


@router.get("/v2/models/stats", **_DOCS)
async def all_statistics(request: Request, repository: RepositoryDep) -> Response:
    """Statistics of every served model version."""
    statistics: Statistics = request.app.state.statistics
    return OrjsonResponse(statistics.to_json(served=served_versions(repository).keys()))


@router.get("/v2/models/{name}/stats", **_DOCS)
@router.get("/v2/models/{name}/versions/{version}/stats", **_DOCS, openapi_extra=VERSION_PARAMETER)
async def model_statistics(name: str, request: Request, repository: RepositoryDep) -> Response:
    """Statistics of every served version of a model, or of one version; 404 for an unknown one."""
    statistics: Statistics = request.app.state.statistics
    return OrjsonResponse(model_statistics_view(statistics, repository, name, path_version(request)))


def model_statistics_view(
    statistics: Statistics, repository: ModelRepository, name: str, version: int | None
) -> dict[str, list[dict[str, Any]]]:
    """Statistics of a model's served versions, or of one (any transport); ModelNotFound for an unknown one."""
    entry = repository.entry(name)
    if version is not None and version not in entry.served:
        raise unknown_version(name, version, sorted(entry.served))
    served = served_versions(repository).keys()
    return statistics.to_json(name, None if version is None else str(version), served)
