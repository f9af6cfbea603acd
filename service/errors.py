"""Domain errors and the one table that maps them to HTTP status codes.

Code below the API layer raises these (they know no HTTP), and so does the batcher with its own errors
(`service.batching.errors`); `service.app` turns any of them into `{"error": ...}` with the status from
`STATUS` and the headers from `headers_for`. Messages name the field and the bad value, because the
message is the whole answer a client gets: never a stack trace.
"""

from __future__ import annotations

import math

from service.batching.errors import (
    BatcherError,
    BatcherStoppedError,
    BatchExecutionError,
    DeadlineExceededError,
    InputRejectedError,
    InvalidInputError,
    QueueFullError,
)


class ServiceError(Exception):
    """Base of every error a client may see; the message is sent as is."""


class InvalidInput(ServiceError):
    """The request is malformed: bad JSON, wrong shape or dtype, undecodable image, empty instances."""


class Unauthorized(ServiceError):
    """A guarded endpoint was called without a valid API key (sent with a `WWW-Authenticate` challenge)."""


class Forbidden(ServiceError):
    """The API key is valid but may not do this (an inference-only key on the repository API)."""


class ModelNotFound(ServiceError):
    """No model or version by that name in the repository."""


class PayloadTooLarge(ServiceError):
    """The body, an image or the number of instances is over a configured limit."""


class UnsupportedMediaType(ServiceError):
    """The body's Content-Type or Content-Encoding is not one the endpoint reads."""


class ModelNotReady(ServiceError):
    """The model exists but cannot serve now (loading, failed to load, unloaded)."""

    retry_after_s = 1


class LoadFailed(ServiceError):
    """An explicit load found nothing it could serve; versions served before keep serving."""


class InferenceFailed(ServiceError):
    """The runtime failed on input that passed validation: a server-side fault."""


def unknown_model(name: str) -> ModelNotFound:
    """Worded as Triton words it: Triton's clients, examples and scripts match on this text."""
    return ModelNotFound(f"Request for unknown model: '{name}' is not found")


def unknown_version(name: str, version: int, served: list[int]) -> ModelNotFound:
    return ModelNotFound(
        f"Request for unknown model: '{name}' version {version} is not found; served versions: {served or 'none'}"
    )


def no_available_versions(name: str, reason: str) -> ModelNotReady:
    """A known model with nothing serving (loading, failed, unloaded), worded as Triton, plus the reason."""
    return ModelNotReady(f"Request for unknown model: '{name}' has no available versions: {reason}")


def version_not_ready(name: str, version: int, reason: str) -> ModelNotReady:
    return ModelNotReady(f"'{name}' version {version} is not at ready state: {reason}")


def load_failed(name: str, reason: str) -> LoadFailed:
    """Triton's prefix for a failed explicit load (`failed to load '<name>'`), then the reasons."""
    return LoadFailed(f"failed to load '{name}': {reason}")


STATUS: dict[type[Exception], int] = {
    InvalidInput: 400,
    InvalidInputError: 400,
    InputRejectedError: 400,
    LoadFailed: 400,
    Unauthorized: 401,
    Forbidden: 403,
    ModelNotFound: 404,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    ModelNotReady: 503,
    QueueFullError: 503,
    BatcherStoppedError: 503,
    DeadlineExceededError: 504,
    InferenceFailed: 500,
    BatchExecutionError: 500,
    ServiceError: 500,
    BatcherError: 500,
}

UNAVAILABLE_RETRY_AFTER_S = 1
"""Retry-After for a stopping batcher (the model is being unloaded or the server shuts down)."""


def status_for(exc: Exception) -> int:
    """The status of the nearest class in `STATUS`, so subclasses defined elsewhere map automatically."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def message_for(exc: Exception) -> str:
    """The text a client sees: the message, except for failed model runs, which get only their error id.

    A failed run is shared by every request of its batch, so its cause may describe another client's
    data; the cause and traceback are in the log under the same error id.
    """
    if isinstance(exc, BatchExecutionError):
        return f"model execution failed (error id {exc.error_id}); the server log has the details"
    return str(exc)


BEARER_CHALLENGE = 'Bearer realm="nnserve"'


def headers_for(exc: Exception) -> dict[str, str]:
    """`Retry-After` (whole seconds, at least 1) for errors that clear by themselves; the challenge for 401."""
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": BEARER_CHALLENGE}
    if isinstance(exc, BatcherStoppedError):
        return {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)}
    retry_after = getattr(exc, "retry_after_s", None)
    if retry_after is None:
        return {}
    return {"Retry-After": str(max(1, math.ceil(retry_after)))}
