"""OpenAI-compatible text completions, so the official `openai` client works with
`base_url="http://host:port/v1"`: `POST /v1/completions` (streaming or not) and `GET /v1/models`.

Errors use OpenAI's shape `{"error": {"message", "type", "param", "code"}}`, which its client reads;
after a stream's 200 they arrive as a `data:` event of that shape. The `Authorization: Bearer` header the
client always sends is checked only when NNSERVE_AUTH_INFERENCE=true (`service.access`, which answers in
this shape too); otherwise generation is open, like `/infer`. Reference: docs/generation.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.api import examples as ex
from service.api.body import read_body
from service.api.deps import request_deadline
from service.api.generate import engines, lease
from service.api.sse import EventStreamResponse, sse_data
from service.batching.errors import BatcherError
from service.errors import ModelNotFound, ServiceError, headers_for, message_for, status_for
from service.generation import GenerationEngine, GenerationResult, GenerationStream, InvalidGenerationParameter
from service.protocol.limits import check_text_length
from service.protocol.openai import (
    Completion,
    CompletionRequest,
    Completions,
    error_body,
    model_list,
    parse_completion_request,
)
from service.repository.registry import ModelRepository
from service.responses import OrjsonResponse
from service.settings import Settings

router = APIRouter(tags=["OpenAI-compatible"])

DONE = b"data: [DONE]\n\n"

COMPLETION_REQUEST = {
    "model": "tiny-gpt",
    "prompt": "ROMEO:\n",
    "max_tokens": 24,
    "temperature": 0.8,
    "seed": 1,
    "stop": ["\n\n"],
}
COMPLETION_RESPONSE = {
    "id": "cmpl-d1418a5801324528a147c3f04daab16f",
    "object": "text_completion",
    "created": 1795615982,
    "model": "tiny-gpt",
    "choices": [
        {
            "text": "That sent to last;\nIs it with a little forst at the king,\nAnd be fear;\nSome",
            "index": 0,
            "logprobs": None,
            "finish_reason": "length",
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 24, "total_tokens": 27},
}


COMPLETION_STREAM = (
    'data: {"id":"cmpl-d1418a5801324528a147c3f04daab16f","object":"text_completion","created":1795615982,'
    '"model":"tiny-gpt","choices":[{"text":"That","index":0,"logprobs":null,"finish_reason":null}]}\n\n'
    "data: [DONE]\n\n"
)

DOMAIN_ERRORS = (ServiceError, BatcherError)
"""What the server's error table maps to a status (a full queue is the engine's QueueFullError)."""


def openai_error(exc: ServiceError | BatcherError) -> Response:
    """A domain error as OpenAI's error object, with the status and headers of the server's error table."""
    status = status_for(exc)
    param = exc.field if isinstance(exc, InvalidGenerationParameter) else None
    code = None
    if isinstance(exc, ModelNotFound):
        param, code = "model", "model_not_found"
    body = error_body(status, message_for(exc), param, code)
    return OrjsonResponse(body, status_code=status, headers=headers_for(exc))


@router.post(
    "/v1/completions",
    responses={
        200: {
            "description": "The completion, or server-sent events ending in `data: [DONE]` with stream=true",
            "content": {
                "application/json": {"examples": {"completion": {"value": COMPLETION_RESPONSE}}},
                "text/event-stream": {"examples": {"stream": {"value": COMPLETION_STREAM}}},
            },
        },
        400: {
            "description": "A bad or unsupported argument, named in `param`",
            "content": ex.json_content(
                error_body(400, "logprobs: log-probabilities are not supported; send null", "logprobs")
            ),
        },
        404: {
            "description": "Unknown model",
            "content": ex.json_content(error_body(404, "unknown model 'gpt-4'", "model", "model_not_found")),
        },
        504: {
            "description": "The deadline (`X-Request-Timeout-Ms`, else the model's or the server's default) passed "
            "while the request waited for a place in the decode batch; it never ran",
            "content": ex.json_content(error_body(504, "deadline exceeded after waiting 150.0 ms in the queue")),
        },
    },
    openapi_extra=ex.request_body({"completion": COMPLETION_REQUEST}, schema=CompletionRequest.model_json_schema()),
)
async def completions(request: Request) -> Response:
    """Complete one prompt or several (`n` choices each), as OpenAI's legacy completions API.

    `finish_reason` is `length` (max_tokens reached) or `stop` (end of text or a stop string).
    Not supported, refused with a 400 naming the parameter: logprobs, penalties, logit_bias, suffix,
    token-id prompts. `top_k` is accepted as an extension.
    """
    try:
        settings: Settings = request.app.state.settings
        completion = parse_completion_request(await read_body(request))
        for prompt in dict.fromkeys(prompt for prompt, _ in completion.choices):
            check_text_length(prompt, "prompt", settings.max_text_chars)
        deadline = request_deadline(request)
        held = lease(request, completion.model, None)
    except ServiceError as exc:
        return openai_error(exc)
    streaming = False
    try:
        streams = _submit(held.engine, completion, deadline)
        objects = Completions(completion.model)
        if completion.stream:

            def close() -> None:
                for stream in streams:
                    if stream.result is None:
                        stream.cancel()
                held.release()

            response = EventStreamResponse(_chunks(completion, streams, objects), close)
            streaming = True  # from here the response's close releases the lease
            return response
        results = await _collect(streams)
    except DOMAIN_ERRORS as exc:
        return openai_error(exc)
    finally:
        if not streaming:
            held.release()  # on any exit: an answer, a domain error, a cancelled or failed request
    prefixes = [prompt if completion.echo else "" for prompt, _ in completion.choices]
    texts = [prefix + result.text for prefix, result in zip(prefixes, results, strict=True)]
    return OrjsonResponse(objects.response(texts, results))


def _submit(engine: GenerationEngine, completion: Completion, deadline: float | None) -> list[GenerationStream]:
    """One sequence per choice; if one is refused, the ones already queued are cancelled."""
    streams: list[GenerationStream] = []
    try:
        for prompt, params in completion.choices:
            streams.append(engine.submit(prompt, params, deadline=deadline))
    except BaseException:
        for stream in streams:
            stream.cancel()
        raise
    return streams


async def _collect(streams: Sequence[GenerationStream]) -> list[GenerationResult]:
    """Every choice's result; cancelled (the middleware does it when the client goes away), the
    sequences still running are cancelled too."""
    try:
        return list(await asyncio.gather(*(stream.collect() for stream in streams)))
    finally:
        for stream in streams:
            if stream.result is None:
                stream.cancel()


async def _chunks(
    completion: Completion, streams: Sequence[GenerationStream], objects: Completions
) -> AsyncGenerator[bytes, None]:
    usage = completion.include_usage
    try:
        if completion.echo:
            for index, (prompt, _) in enumerate(completion.choices):
                yield sse_data(objects.chunk(index, prompt, with_usage=usage))
        async with aclosing(_interleave(streams)) as deltas:
            async for index, delta in deltas:
                result = streams[index].result
                if delta is not None:
                    yield sse_data(objects.chunk(index, delta, with_usage=usage))
                elif result is not None:
                    yield sse_data(objects.chunk(index, "", result.finish_reason, with_usage=usage))
    except DOMAIN_ERRORS as exc:
        yield sse_data(error_body(status_for(exc), message_for(exc)))
        return
    if usage:
        yield sse_data(objects.usage_chunk([s.result for s in streams if s.result is not None]))
    yield DONE


async def _interleave(streams: Sequence[GenerationStream]) -> AsyncGenerator[tuple[int, str | None], None]:
    """(choice index, text delta) as the engine produces them, and (index, None) when a choice ends."""
    queue: asyncio.Queue[tuple[int, str | None] | BaseException] = asyncio.Queue()

    async def pump(index: int, stream: GenerationStream) -> None:
        try:
            async for delta in stream:
                queue.put_nowait((index, delta))
            queue.put_nowait((index, None))
        except Exception as exc:
            queue.put_nowait(exc)

    pumps = [asyncio.ensure_future(pump(i, stream)) for i, stream in enumerate(streams)]
    try:
        remaining = len(streams)
        while remaining:
            item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            remaining -= item[1] is None
            yield item
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


MODEL_LIST = {
    "object": "list",
    "data": [{"id": "tiny-gpt", "object": "model", "created": 1795614749, "owned_by": "nnserve"}],
}


@router.get("/v1/models", responses=ex.ok(MODEL_LIST))
async def models(request: Request) -> Response:
    """The models that generate text, in OpenAI's list format (`created`: when the served version was made)."""
    repository: ModelRepository = request.app.state.repository
    registry = engines(request)
    listed = []
    for entry in repository.entries():
        if entry.served and entry.config is not None and entry.config.generation is not None:
            listed.append((entry.name, registry.created(entry.served[max(entry.served)])))
    return OrjsonResponse(model_list(listed))
