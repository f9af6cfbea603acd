"""The JSON response class: orjson, which also serializes numpy arrays without a Python-list detour."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> OrjsonResponse:
    """The one error body shape: `{"error": "..."}`."""
    return OrjsonResponse({"error": message}, status_code=status, headers=headers)
