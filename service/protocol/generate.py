"""Triton's generate extension (PROTOCOLS.md section 5): the request body and the JSON objects sent back.

Sampling parameters are accepted at the top level (as Triton maps extra keys) or inside `parameters` (as
the OIP yaml puts them); their ranges are checked by the engine, which knows the model's limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.errors import InvalidInput
from service.generation import GenerationResult, SamplingParams
from service.protocol.infer import describe_validation_error, parse_json


class GenerateParameters(BaseModel):
    """Unknown keys are errors (a misspelt `max_new_tokens` must not be silently ignored); no coercion."""

    model_config = ConfigDict(extra="forbid", strict=True)

    max_tokens: int | None = Field(None, description="Most tokens to generate; default: the model's.")
    temperature: float | None = Field(None, description="0 = greedy; default 1.")
    top_k: int | None = Field(None, description="Keep the k likeliest tokens; 0 (default) = off.")
    top_p: float | None = Field(None, description="Nucleus sampling, in (0, 1]; default 1.")
    seed: int | None = Field(None, description="Same seed, prompt and parameters: same text.")
    stop: str | list[str] | None = Field(None, description="Generation ends before any of these strings.")
    details: bool | None = Field(None, description="false: leave `details` out of the answer.")
    stream: bool | None = Field(None, description="Must match the endpoint when given.")


class GenerateRequest(GenerateParameters):
    id: str | None = Field(None, description="Echoed back when not empty.")
    text_input: str = Field(description="The prompt.")
    parameters: GenerateParameters = Field(default_factory=GenerateParameters)


@dataclass(frozen=True)
class Generation:
    """A parsed request: what to generate and how to answer."""

    id: str | None
    text_input: str
    params: SamplingParams
    details: bool


def parse_generate_request(body: bytes, *, streaming: bool) -> Generation:
    """The request of `/generate` (streaming=False) or `/generate_stream`; InvalidInput names the field."""
    try:
        request = GenerateRequest.model_validate(parse_json(body))
    except ValidationError as exc:
        raise InvalidInput(describe_validation_error(exc)) from None
    values: dict[str, Any] = {}
    for name in GenerateParameters.model_fields:
        top, inner = getattr(request, name), getattr(request.parameters, name)
        if top is not None and inner is not None and top != inner:
            raise InvalidInput(
                f"{name}: given at the top level ({top!r}) and in parameters ({inner!r}); send it once"
            )
        if (value := top if top is not None else inner) is not None:
            values[name] = value
    stream = values.pop("stream", streaming)
    if stream != streaming:
        endpoint = "/generate_stream" if stream else "/generate"
        raise InvalidInput(f"stream: {stream!r} does not match this endpoint; use {endpoint}")
    details = values.pop("details", True)
    stop = values.pop("stop", ())
    params = SamplingParams(stop=(stop,) if isinstance(stop, str) else tuple(stop), **values)
    return Generation(id=request.id or None, text_input=request.text_input, params=params, details=details)


def _head(model_name: str, model_version: int, request_id: str | None) -> dict[str, Any]:
    head: dict[str, Any] = {"id": request_id} if request_id else {}
    head.update(model_name=model_name, model_version=str(model_version))
    return head


def details_of(result: GenerationResult) -> dict[str, Any]:
    """Why generation ended (`length`, `eos_token`, `stop_sequence`), token counts and timings."""
    return {
        "finish_reason": result.finish_reason,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "time_to_first_token_s": result.time_to_first_token_s,
        "time_per_output_token_s": result.time_per_output_token_s,
    }


def generate_response(
    model_name: str, model_version: int, request: Generation, result: GenerationResult
) -> dict[str, Any]:
    """The answer of `/generate`: `{"id"?, "model_name", "model_version", "text_output", "details"?}`."""
    response = _head(model_name, model_version, request.id)
    response["text_output"] = result.text
    if request.details:
        response["details"] = details_of(result)
    return response


class StreamEvents:
    """The JSON objects of `/generate_stream`: one per delta (`done: false`), then a last one (`done: true`)
    with empty `text_output` and the details, so joining every `text_output` gives the whole text."""

    def __init__(self, model_name: str, model_version: int, request: Generation) -> None:
        self._head = _head(model_name, model_version, request.id)
        self._details = request.details

    def delta(self, text: str) -> dict[str, Any]:
        return {**self._head, "text_output": text, "done": False}

    def last(self, result: GenerationResult) -> dict[str, Any]:
        event = {**self._head, "text_output": "", "done": True}
        if self._details:
            event["details"] = details_of(result)
        return event
