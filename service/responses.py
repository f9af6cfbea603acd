"""The JSON response class: orjson, which also serializes numpy arrays without a Python-list detour."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.responses import JSONResponse

from service.batching import BatchExecutionError
from service.errors import headers_for, message_for, status_for
from service.protocol.openai import OPENAI_PATHS, error_body

log = logging.getLogger(__name__)


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> OrjsonResponse:
    """The one error body shape: `{"error": "..."}`."""
    return OrjsonResponse({"error": message}, status_code=status, headers=headers)


def domain_error_response(exc: Exception, path: str) -> OrjsonResponse:
    """The answer to a service or batcher error, with the status from the table in service.errors.

    A failed model run is logged under its error id, the only part of it the client sees.
    """
    if isinstance(exc, BatchExecutionError):
        log.warning("request_failed", extra={"error_id": exc.error_id, "path": path})
    return error_response(status_for(exc), message_for(exc), headers_for(exc))


def error_response_for(
    path: str, status: int, message: str, headers: dict[str, str] | None = None, code: str | None = None
) -> OrjsonResponse:
    """An error answered before any route ran (middleware): OpenAI's shape on the OpenAI-compatible
    paths, whose client reads only that, `{"error": "..."}` everywhere else."""
    if path in OPENAI_PATHS:
        return OrjsonResponse(error_body(status, message, None, code), status_code=status, headers=headers)
    return error_response(status, message, headers)
