"""The service's error table in gRPC terms: each error's HTTP status (service.errors.STATUS) becomes a
gRPC status code, with the same message as over HTTP.

A full queue is RESOURCE_EXHAUSTED (gRPC's "retry later, you are sending too much"), a model that cannot
serve now UNAVAILABLE; both carry `retry-after` (whole seconds) in the trailing metadata, as HTTP sends
`Retry-After`. docs/serving.md has the table.
"""

from __future__ import annotations

from grpc import StatusCode

from service.batching.errors import QueueFullError
from service.errors import headers_for, status_for

CLIENT_CLOSED = 499
"""The HTTP-equivalent status counted for a call its client cancelled (as the HTTP middleware counts it)."""

BY_HTTP_STATUS: dict[int, StatusCode] = {
    400: StatusCode.INVALID_ARGUMENT,
    401: StatusCode.UNAUTHENTICATED,
    403: StatusCode.PERMISSION_DENIED,
    404: StatusCode.NOT_FOUND,
    413: StatusCode.RESOURCE_EXHAUSTED,
    415: StatusCode.INVALID_ARGUMENT,
    499: StatusCode.CANCELLED,
    500: StatusCode.INTERNAL,
    503: StatusCode.UNAVAILABLE,
    504: StatusCode.DEADLINE_EXCEEDED,
}


def grpc_status(exc: Exception) -> StatusCode:
    if isinstance(exc, QueueFullError):
        return StatusCode.RESOURCE_EXHAUSTED
    return BY_HTTP_STATUS.get(status_for(exc), StatusCode.INTERNAL)


def trailing_metadata(exc: Exception) -> tuple[tuple[str, str], ...]:
    """`retry-after` for errors that clear by themselves (the HTTP answer's Retry-After)."""
    retry_after = headers_for(exc).get("Retry-After")
    return (("retry-after", retry_after),) if retry_after is not None else ()
