"""What every RPC gets around its handler, as the HTTP middleware gives every route: API-key check, a
clear error for a message that is not the RPC's protobuf, the service's errors as gRPC status codes,
metrics (`protocol="grpc"`, endpoint = the RPC's name), the access log, requests in flight, request IDs.

Handlers take the parsed request, the call's `RequestInfo` (filled with the model they serve, for the
metrics) and the grpc context, and return the response message.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import Token
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from service.access import KeyRing, Role, presented_keys, refusal_for
from service.batching import BatcherError
from service.errors import InvalidInput, ServiceError, message_for, status_for
from service.generation.registry import GenerationEngines
from service.grpc.errors import CLIENT_CLOSED, grpc_status, trailing_metadata
from service.lifecycle import Lifecycle
from service.logs import request_id
from service.metrics import Metrics
from service.middleware import RequestInfo
from service.repository.registry import ModelRepository
from service.settings import Settings
from service.statistics import Statistics

log = logging.getLogger("service.access")
errors_log = logging.getLogger(__name__)

Request = TypeVar("Request", bound=Message)
Response = TypeVar("Response", bound=Message)
Context = grpc.aio.ServicerContext[Any, Any]
KEY_HEADERS = frozenset({"authorization", "x-api-key"})


@dataclass(frozen=True)
class DataPlane:
    """The app's shared pieces, the same objects the HTTP routes use."""

    settings: Settings
    repository: ModelRepository
    metrics: Metrics
    statistics: Statistics
    lifecycle: Lifecycle
    engines: GenerationEngines


class Calls:
    """Wraps handlers into grpc method handlers; one per server."""

    def __init__(self, plane: DataPlane, service: str) -> None:
        self.plane = plane
        self.service = service
        self.keys = KeyRing(plane.settings.admin_keys, plane.settings.inference_keys)
        self.auth_inference = plane.settings.auth_inference
        self._id_prefix = uuid.uuid4().hex[:16]
        self._ids = itertools.count()

    def needed_role(self, role: Role | None) -> Role | None:
        """ADMIN always applies once keys exist; INFERENCE only with auth_inference (as over HTTP)."""
        if not self.keys or role is None:
            return None
        if role is Role.INFERENCE and not self.auth_inference:
            return None
        return role

    def unary(
        self,
        rpc: str,
        request_type: type[Request],
        handler: Callable[[Request, RequestInfo, Context], Awaitable[Response]],
        role: Role | None,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        needed = self.needed_role(role)

        async def call(raw: bytes, context: Context) -> Message:
            call = self._begin(rpc)
            try:
                self._authorize(needed, context)
                return await handler(parse_message(request_type, raw), call.info, context)
            except BaseException as exc:
                await call.fail(exc, context)
                raise
            finally:
                self._end(call)

        return grpc.unary_unary_rpc_method_handler(call, response_serializer=_serialize)

    def stream(
        self,
        rpc: str,
        handler: Callable[[AsyncIterator[bytes], RequestInfo, Context], AsyncIterator[Message]],
        role: Role | None,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """A bidirectional stream: the key is checked once, at its start; the handler parses each message
        and reports per-request errors in the stream itself (as Triton does)."""
        needed = self.needed_role(role)

        async def call(requests: AsyncIterator[bytes], context: Context) -> AsyncIterator[Message]:
            call = self._begin(rpc)
            try:
                self._authorize(needed, context)
                async for response in handler(requests, call.info, context):
                    yield response
            except BaseException as exc:
                await call.fail(exc, context)
                raise
            finally:
                self._end(call)

        return grpc.stream_stream_rpc_method_handler(call, response_serializer=_serialize)

    def _authorize(self, needed: Role | None, context: Context) -> None:
        if needed is None:
            return
        headers = {
            key.encode(): value.encode() if isinstance(value, str) else value
            for key, value in context.invocation_metadata() or ()
            if key in KEY_HEADERS
        }
        refusal = refusal_for(self.keys, needed, presented_keys(headers))
        if refusal is not None:
            raise refusal

    def _begin(self, rpc: str) -> _Call:
        rid = f"{self._id_prefix}{next(self._ids):016x}"
        call = _Call(RequestInfo(received_at=time.monotonic(), endpoint=rpc), rid)
        call.token = request_id.set(call.rid)
        self.plane.lifecycle.in_flight += 1
        return call

    def _end(self, call: _Call) -> None:
        """Requests in flight, the metrics and the access log line, as the HTTP middleware keeps them."""
        plane = self.plane
        plane.lifecycle.in_flight -= 1
        seconds = time.perf_counter() - call.started
        info = call.info
        plane.metrics.observe_request(
            model=info.model, version=info.version, endpoint=info.endpoint, code=call.status,
            seconds=seconds, protocol="grpc",
        )  # fmt: skip
        if plane.settings.access_log:
            log.info(
                "request",
                extra={
                    "method": "gRPC",
                    "path": f"/{self.service}/{info.endpoint}",
                    "status": call.status,
                    "ms": round(seconds * 1000, 3),
                },
            )
        if call.token is not None:
            request_id.reset(call.token)


class _Call:
    """One call's bookkeeping: its info, request ID, start time and HTTP-equivalent status."""

    def __init__(self, info: RequestInfo, rid: str) -> None:
        self.info = info
        self.rid = rid
        self.started = time.perf_counter()
        self.status = 200
        self.token: Token[str | None] | None = None

    async def fail(self, exc: BaseException, context: Context) -> None:
        """Answer `exc` as its gRPC status (aborting raises); cancellations and aborts pass through."""
        if isinstance(exc, asyncio.CancelledError):
            self.status = CLIENT_CLOSED
            log.info("client_disconnected", extra={"path": self.info.endpoint})
            return
        if isinstance(exc, grpc.aio.AbortError | GeneratorExit):
            return
        if isinstance(exc, ServiceError | BatcherError):
            self.status = status_for(exc)
            await context.abort(grpc_status(exc), message_for(exc), trailing_metadata(exc))
        if isinstance(exc, Exception):
            self.status = 500
            errors_log.error("unhandled_error", exc_info=exc, extra={"path": self.info.endpoint})
            await context.abort(grpc.StatusCode.INTERNAL, f"internal server error (request id {self.rid})")


def parse_message(request_type: type[Request], raw: bytes) -> Request:
    """The request message; a clear INVALID_ARGUMENT (not grpc's bare "Exception deserializing") when the
    bytes are not that message."""
    try:
        return request_type.FromString(raw)
    except DecodeError as exc:
        name = request_type.DESCRIPTOR.full_name
        raise InvalidMessage(f"request: not a valid {name} protobuf message ({exc})") from None


class InvalidMessage(InvalidInput):
    """The bytes of a call do not parse as its protobuf message."""


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()
