"""The budget of one request's pictures, for the routes that decode them (`:predict`, the playground's
preprocess route): the server's NNSERVE_MAX_REQUEST_PIXELS, and the request's deadline (its own, else
the model's `batching.timeout_ms`, else NNSERVE_REQUEST_TIMEOUT_MS, counted from its arrival), so
decoding stops between pictures once nobody will use the answer."""

from __future__ import annotations

from fastapi import Request

from service.middleware import request_info
from service.runtime.model import ServedModel
from service.settings import Settings
from service.tasks.image import RequestBudget


def picture_budget(request: Request, model: ServedModel, deadline: float | None) -> RequestBudget:
    """`deadline` is the request's own (`request_deadline`); None falls back to the model's default."""
    settings: Settings = request.app.state.settings
    default_s = model.batch_policy.default_timeout_s
    if deadline is None and default_s is not None:
        deadline = request_info(request.scope).received_at + default_s
    return RequestBudget(settings.max_request_pixels, deadline, setting="max_request_pixels")
