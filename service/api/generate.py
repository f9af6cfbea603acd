"""Triton's generate extension: `/generate` answers one JSON object, `/generate_stream` server-sent events.

Errors found before generation starts are ordinary JSON errors with their status (a full queue: 503
with Retry-After); once a stream has sent its 200, a failure arrives as the event `data: {"error": "..."}`.
A client that goes away stops its sequence at the engine's next step: the middleware cancels a waiting
`/generate`, and the event stream notices the disconnect itself. Reference: docs/generation.md.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.api import examples as ex
from service.api.body import read_body
from service.api.deps import VERSION_PARAMETER, path_version, request_deadline
from service.api.sse import EventStreamResponse, sse_data
from service.batching.errors import BatcherError
from service.errors import InvalidInput, ServiceError, message_for
from service.generation import GenerationStream, InvalidGenerationParameter
from service.generation.registry import GenerationEngines, GenerationLease
from service.middleware import request_info
from service.protocol.generate import (
    GenerateRequest,
    Generation,
    StreamEvents,
    generate_response,
    parse_generate_request,
)
from service.protocol.limits import check_text_length
from service.responses import OrjsonResponse
from service.settings import Settings

router = APIRouter(tags=["Text generation"])

WIRE_NAMES = {"prompt": "text_input"}
"""Engine parameter names that this protocol spells differently."""


def engines(request: Request) -> GenerationEngines:
    registry: GenerationEngines = request.app.state.generation_engines
    return registry


def lease(request: Request, name: str, version: int | None) -> GenerationLease:
    """The version to generate with and its engine, leased until `release`. Labels the request's
    metrics with the model, as the other routes' model dependency does."""
    held = engines(request).lease(request.app.state.repository, name, version, request.app.state.metrics)
    info = request_info(request.scope)
    info.model, info.version = held.model.name, str(held.model.version)
    return held


@contextmanager
def wire_errors() -> Iterator[None]:
    """Engine errors in this protocol's words: `prompt` is `text_input` here."""
    try:
        yield
    except InvalidGenerationParameter as exc:
        raise InvalidInput(f"{WIRE_NAMES.get(exc.field, exc.field)}: {exc.detail}") from None


async def _parse(request: Request, *, streaming: bool) -> Generation:
    """The checked request: JSON body, fields, and the prompt's length (413 before it is tokenized)."""
    generation = parse_generate_request(await read_body(request), streaming=streaming)
    settings: Settings = request.app.state.settings
    check_text_length(generation.text_input, "text_input", settings.max_text_chars)
    return generation


GENERATE_REQUEST = {
    "text_input": "ROMEO:\n",
    "max_tokens": 24,
    "temperature": 0.8,
    "top_k": 40,
    "top_p": 0.95,
    "seed": 1,
    "stop": ["\n\n"],
}
GENERATE_GREEDY = {"text_input": "To be, or not to be", "parameters": {"max_tokens": 16, "temperature": 0}}
GENERATE_RESPONSE = {
    "model_name": "tiny-gpt",
    "model_version": "1",
    "text_output": "You cannot be do you are for my life, I will\nSUFFOLK:\nTo the bondhing is",
    "details": {
        "finish_reason": "length",
        "prompt_tokens": 3,
        "completion_tokens": 24,
        "time_to_first_token_s": 0.0076,
        "time_per_output_token_s": 0.00047,
    },
}
GENERATE_STREAM = (
    'data: {"model_name":"tiny-gpt","model_version":"1","text_output":"I","done":false}\n\n'
    'data: {"model_name":"tiny-gpt","model_version":"1","text_output":"\'ll","done":false}\n\n'
    'data: {"model_name":"tiny-gpt","model_version":"1","text_output":"","done":true,"details":'
    '{"finish_reason":"length","prompt_tokens":3,"completion_tokens":2,"time_to_first_token_s":0.011,'
    '"time_per_output_token_s":0.0006}}\n\n'
)

_DOCS: dict[str, Any] = {
    "responses": {
        200: {
            "description": "The generated text (`/generate`), or server-sent events (`/generate_stream`)",
            "content": {
                "application/json": {"examples": {"generate": {"value": GENERATE_RESPONSE}}},
                "text/event-stream": {"examples": {"generate_stream": {"value": GENERATE_STREAM}}},
            },
        },
        **ex.errors(400, 404, 503),
        504: {
            "description": "The deadline passed while the request waited for a place in the decode batch; it "
            "never ran (a stream, already answered 200, ends with an error event instead)",
            "content": ex.json_content({"error": "deadline exceeded after waiting 150.0 ms in the queue"}),
        },
    },
    "openapi_extra": ex.request_body(
        {"sampled": GENERATE_REQUEST, "greedy": GENERATE_GREEDY},
        schema=GenerateRequest.model_json_schema(),
    ),
}


@router.post("/v2/models/{name}/generate", **_DOCS)
@router.post(
    "/v2/models/{name}/versions/{version}/generate",
    responses=_DOCS["responses"],
    openapi_extra={**_DOCS["openapi_extra"], **VERSION_PARAMETER},
)
async def generate(name: str, request: Request) -> Response:
    """Generate text from `text_input`: `{"model_name", "model_version", "text_output", "details"}`.

    Sampling parameters (`max_tokens`, `temperature`, `top_k`, `top_p`, `seed`, `stop`) go at the top
    level or in `parameters`; `details` tells why generation ended, token counts and timings.
    """
    generation = await _parse(request, streaming=False)
    deadline = request_deadline(request)
    held = lease(request, name, path_version(request))
    try:
        with wire_errors():
            result = await held.engine.generate(generation.text_input, generation.params, deadline=deadline)
    finally:
        held.release()
    return OrjsonResponse(generate_response(held.model.name, held.model.version, generation, result))


@router.post("/v2/models/{name}/generate_stream", **_DOCS)
@router.post(
    "/v2/models/{name}/versions/{version}/generate_stream",
    responses=_DOCS["responses"],
    openapi_extra={**_DOCS["openapi_extra"], **VERSION_PARAMETER},
)
async def generate_stream(name: str, request: Request) -> Response:
    """The same request; the text arrives as it is generated, as server-sent events.

    One `data: {json}` event per new piece of text, whose `text_output` holds only that piece (joined,
    they are the whole text), then a last event with `"done": true` and `details`. No `[DONE]` line.
    """
    generation = await _parse(request, streaming=True)
    deadline = request_deadline(request)
    held = lease(request, name, path_version(request))
    try:
        with wire_errors():
            stream = held.engine.submit(generation.text_input, generation.params, deadline=deadline)
    except BaseException:
        held.release()
        raise

    def close() -> None:
        if stream.result is None:
            stream.cancel()
        held.release()

    events = StreamEvents(held.model.name, held.model.version, generation)
    return EventStreamResponse(_events(stream, events), close)


async def _events(stream: GenerationStream, events: StreamEvents) -> AsyncGenerator[bytes, None]:
    try:
        async for delta in stream:
            yield sse_data(events.delta(delta))
    except (ServiceError, BatcherError) as exc:  # a passed deadline is the batcher's error
        yield sse_data({"error": message_for(exc)})
        return
    assert stream.result is not None, "a stream that ended without error has a result"
    yield sse_data(events.last(stream.result))


GENERATE_STATS = {
    "name": "tiny-gpt",
    "version": "1",
    "active": 0,
    "waiting": 0,
    "requests": 17,
    "generated_tokens": 667,
    "prefill_runs": 15,
    "decode_steps": 315,
    "max_decode_batch": 7,
    "prefill_batch_sizes": {"1": 14, "3": 1},
    "decode_batch_sizes": {"1": 220, "2": 1, "3": 31, "4": 31, "5": 1, "6": 11, "7": 20},
    "finish_reasons": {"length": 17},
}
_STATS_DOCS: dict[str, Any] = {"responses": {**ex.ok(GENERATE_STATS), **ex.errors(400, 404, 503)}}


@router.get("/v2/models/{name}/generate_stats", **_STATS_DOCS)
@router.get("/v2/models/{name}/versions/{version}/generate_stats", **_STATS_DOCS, openapi_extra=VERSION_PARAMETER)
async def generate_stats(name: str, request: Request) -> Response:
    """What the version's generation engine did: requests, generated tokens, sequences decoding now
    (`active`) and queued (`waiting`), and how many sequences shared each prefill and decode step."""
    registry = engines(request)
    model = registry.lookup(request.app.state.repository, name, path_version(request))
    return OrjsonResponse({"name": model.name, "version": str(model.version), **registry.statistics(model)})
