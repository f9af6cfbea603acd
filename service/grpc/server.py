"""The gRPC server's life: built and started in the app's lifespan, on uvicorn's event loop (grpcio's
asyncio API), so both protocols feed the same batchers; stopped first at shutdown, letting calls in
flight finish within `shutdown_grace_s` while new ones are refused.

Messages are limited to `grpc_max_message_bytes` both ways (grpcio refuses larger ones with
RESOURCE_EXHAUSTED before any handler runs). Reflection lists the inference and health services, so
`grpcurl` works without the .proto files.
"""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from service.grpc.calls import DataPlane
from service.grpc.health import Health
from service.grpc.inference import SERVICE, InferenceService

log = logging.getLogger(__name__)


def address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def start_grpc(plane: DataPlane) -> grpc.aio.Server:
    """Serve gRPC on `settings.grpc_port` (of `settings.host`) on the running loop; raises when the port
    cannot be bound, which stops the start-up as a taken HTTP port does."""
    settings = plane.settings
    limit = settings.grpc_max_message_bytes
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            ("grpc.so_reuseport", 0),
        ]
    )
    server.add_generic_rpc_handlers([InferenceService(plane).handler()])

    def ready() -> bool:
        return not plane.lifecycle.draining and plane.repository.readiness().ready

    health_pb2_grpc.add_HealthServicer_to_server(Health(ready), server)
    health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    reflection.enable_server_reflection([SERVICE, health_name, reflection.SERVICE_NAME], server)
    where = address(settings.host, settings.grpc_port)
    try:
        port = server.add_insecure_port(where)
    except RuntimeError as exc:
        raise RuntimeError(f"gRPC: cannot listen on {where} ({exc}); set NNSERVE_GRPC_PORT (0 = no gRPC)") from None
    await server.start()
    log.info("grpc_serving", extra={"address": address(settings.host, port), "max_message_bytes": limit})
    return server


async def stop_grpc(server: grpc.aio.Server, grace_s: float) -> None:
    await server.stop(grace_s)
    log.info("grpc_stopped")
