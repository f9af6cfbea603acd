"""Domain errors and the one table that maps them to HTTP status codes.

Code below the API layer raises these (they know no HTTP); `service.app` turns any of them into
`{"error": str(exc)}` with the status from `STATUS`. Messages name the field and the bad value, because
the message is the whole answer a client gets: never a stack trace.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a client may see; the message is sent as is."""


class InvalidInput(ServiceError):
    """The request is malformed: bad JSON, wrong shape or dtype, undecodable image, empty instances."""


class Unauthorized(ServiceError):
    """A guarded endpoint was called without the configured API key."""


class ModelNotFound(ServiceError):
    """No model or version by that name in the repository."""


class PayloadTooLarge(ServiceError):
    """The body, an image or the number of instances is over a configured limit."""


class ModelNotReady(ServiceError):
    """The model exists but cannot serve now (loading, failed to load, unloaded)."""

    retry_after_s = 1


class LoadFailed(ServiceError):
    """An explicit load found nothing it could serve; versions served before keep serving."""


class InferenceFailed(ServiceError):
    """The runtime failed on input that passed validation: a server-side fault."""


STATUS: dict[type[ServiceError], int] = {
    InvalidInput: 400,
    LoadFailed: 400,
    Unauthorized: 401,
    ModelNotFound: 404,
    PayloadTooLarge: 413,
    ModelNotReady: 503,
    InferenceFailed: 500,
    ServiceError: 500,
}


def status_for(exc: ServiceError) -> int:
    """The status of the nearest class in `STATUS`, so subclasses defined elsewhere map automatically."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def headers_for(exc: ServiceError) -> dict[str, str]:
    retry_after = getattr(exc, "retry_after_s", None)
    return {"Retry-After": str(retry_after)} if retry_after is not None else {}
