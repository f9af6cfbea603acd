"""Errors the generation engine raises on a request's behalf; the API maps them through `service.errors`."""

from __future__ import annotations

from service.errors import InvalidInput


class InvalidGenerationParameter(InvalidInput):
    """A sampling parameter or the prompt is out of range (400). `field` names the parameter as the engine
    knows it (`prompt`, `max_tokens`, ...) so a route can translate it to its own wire name."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.detail = message
        super().__init__(f"{field}: {message}")
