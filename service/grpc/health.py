"""The standard gRPC health service (`grpc.health.v1.Health`), what Kubernetes' gRPC probes call.

Service names: "" (the server), `inference.GRPCInferenceService` and `readiness` answer SERVING exactly
when `/v2/health/ready` answers 200; `liveness` answers SERVING while the process answers at all (as
`/v2/health/live`). Any other name is NOT_FOUND, as the health protocol asks. `Watch` sends the status
when it changes (checked every `WATCH_INTERVAL_S`). Open to every caller, as the HTTP probes are.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

LIVENESS = "liveness"
READINESS_NAMES = frozenset({"", "readiness", "inference.GRPCInferenceService"})
WATCH_INTERVAL_S = 1.0

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class Health(health_pb2_grpc.HealthServicer):
    def __init__(self, ready: Callable[[], bool]) -> None:
        self._ready = ready

    def status(self, service: str) -> int:
        if service == LIVENESS:
            return SERVING
        if service in READINESS_NAMES:
            return SERVING if self._ready() else NOT_SERVING
        return SERVICE_UNKNOWN

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> health_pb2.HealthCheckResponse:
        status = self.status(request.service)
        if status == SERVICE_UNKNOWN:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        last = None
        while True:
            status = self.status(request.service)
            if status != last:
                last = status
                yield health_pb2.HealthCheckResponse(status=status)
            await asyncio.sleep(WATCH_INTERVAL_S)
