"""OpenAI's completions API as the official `openai` client speaks it (PROTOCOLS.md section 6).

What the engine cannot do (log-probabilities, penalties, logit bias, suffix, token-id prompts) is refused
with a 400 naming the parameter rather than silently ignored, so a client never trusts a result that
does not honour its request.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.errors import InvalidInput
from service.generation import FinishReason, GenerationResult, InvalidGenerationParameter, SamplingParams
from service.generation.params import MAX_SEED, check_seed
from service.protocol.infer import parse_json
from service.protocol.limits import shown

MAX_CHOICES = 16
"""Prompts times `n`: one request may not take the whole decode batch."""

OpenAIFinishReason = Literal["stop", "length"]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    include_usage: bool | None = None


class CompletionRequest(BaseModel):
    """The body `client.completions.create(...)` sends (only the arguments given), plus vLLM's `top_k`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str
    prompt: str | list[str] | list[int] | list[list[int]] = Field(description="Text, or a list of texts.")
    max_tokens: int | None = Field(None, description="Default: the model's `default_max_tokens`.")
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = Field(None, description="Extension (as in vLLM): keep the k likeliest tokens.")
    seed: int | None = Field(None, description="Choice j of a prompt samples with seed + j.")
    stop: str | list[str] | None = None
    n: int | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    echo: bool | None = None
    user: str | None = None
    logprobs: int | None = Field(None, description="Not supported: null only.")
    best_of: int | None = Field(None, description="Null or equal to n.")
    suffix: str | None = Field(None, description="Not supported: null or empty only.")
    frequency_penalty: float | None = Field(None, description="Not supported: null or 0 only.")
    presence_penalty: float | None = Field(None, description="Not supported: null or 0 only.")
    logit_bias: dict[str, int] | None = Field(None, description="Not supported: null or {} only.")


@dataclass(frozen=True)
class Completion:
    """A checked request: `choices` lists (prompt, sampling parameters), one per choice index."""

    model: str
    choices: list[tuple[str, SamplingParams]]
    stream: bool
    include_usage: bool
    echo: bool


UNION_TYPES = {"prompt": "a string or a list of strings", "stop": "a string, a list of strings or null"}
"""Parameters of several accepted types, whose validation errors would otherwise list every type."""


def _problem(exc: ValidationError) -> InvalidInput:
    """The first validation error, with its parameter as OpenAI's `param` when there is one."""
    error = exc.errors()[0]
    if not error["loc"]:
        return InvalidInput(f"request body: expected a JSON object, got {type(error['input']).__name__}")
    param, *inner = (str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return InvalidGenerationParameter(param, "unrecognized request argument")
    if param in UNION_TYPES:
        return InvalidGenerationParameter(param, f"must be {UNION_TYPES[param]}, got {shown(error['input'], 60)}")
    where = f"{'.'.join(inner)}: " if inner else ""
    return InvalidGenerationParameter(param, f"{where}{error['msg']} (got {shown(error['input'], 60)})")


def _unsupported(request: CompletionRequest) -> None:
    if request.logprobs is not None:
        raise InvalidGenerationParameter("logprobs", "log-probabilities are not supported; send null")
    if request.suffix:
        raise InvalidGenerationParameter("suffix", "is not supported; send null")
    for name in ("frequency_penalty", "presence_penalty"):
        if getattr(request, name):
            raise InvalidGenerationParameter(name, "penalties are not supported; send null or 0")
    if request.logit_bias:
        raise InvalidGenerationParameter("logit_bias", "is not supported; send null or {}")


def _prompts(prompt: str | list[str] | list[int] | list[list[int]]) -> list[str]:
    if isinstance(prompt, str):
        return [prompt]
    if not prompt:
        raise InvalidGenerationParameter("prompt", "is an empty list; send a string or a list of strings")
    texts = [p for p in prompt if isinstance(p, str)]
    if len(texts) != len(prompt):
        raise InvalidGenerationParameter("prompt", "token-id prompts are not supported; send text")
    return texts


def parse_completion_request(body: bytes) -> Completion:
    """Raises InvalidGenerationParameter whose `field` is the OpenAI `param` (InvalidInput for bad JSON)."""
    try:
        request = CompletionRequest.model_validate(parse_json(body))
    except ValidationError as exc:
        raise _problem(exc) from None
    _unsupported(request)
    n = 1 if request.n is None else request.n
    if n < 1:
        raise InvalidGenerationParameter("n", f"must be >= 1, got {n}")
    if request.best_of is not None and request.best_of != n:
        raise InvalidGenerationParameter("best_of", f"must equal n ({n}): choosing the best is not supported")
    prompts = _prompts(request.prompt)
    if len(prompts) * n > MAX_CHOICES:
        raise InvalidGenerationParameter(
            "n", f"{len(prompts)} prompts x n={n} is more than {MAX_CHOICES} choices per request"
        )
    if request.stream_options is not None and not request.stream:
        raise InvalidGenerationParameter("stream_options", "is only allowed when stream is true")
    check_seed(request.seed)  # before choice j's seed + j: an out-of-range seed is refused, not wrapped
    stop = request.stop if request.stop is not None else ()
    base = SamplingParams(
        max_tokens=request.max_tokens,
        temperature=1.0 if request.temperature is None else request.temperature,
        top_k=request.top_k or 0,
        top_p=1.0 if request.top_p is None else request.top_p,
        seed=request.seed,
        stop=(stop,) if isinstance(stop, str) else tuple(stop),
    )
    choices = [
        (prompt, base if base.seed is None else _reseeded(base, j)) for prompt in prompts for j in range(n)
    ]
    return Completion(
        model=request.model,
        choices=choices,
        stream=bool(request.stream),
        include_usage=bool(request.stream_options and request.stream_options.include_usage),
        echo=bool(request.echo),
    )


def _reseeded(params: SamplingParams, offset: int) -> SamplingParams:
    """Choice j gets seed + j: the first choice of a prompt is the text that prompt gets alone."""
    assert params.seed is not None
    return SamplingParams(
        max_tokens=params.max_tokens,
        temperature=params.temperature,
        top_k=params.top_k,
        top_p=params.top_p,
        seed=(params.seed + offset) % (MAX_SEED + 1),
        stop=params.stop,
    )


def finish_reason(reason: FinishReason) -> OpenAIFinishReason:
    """OpenAI knows `stop` (the model ended, or a stop string) and `length`."""
    return "length" if reason == "length" else "stop"


def usage(results: list[GenerationResult]) -> dict[str, int]:
    prompt = sum(r.prompt_tokens for r in results)
    completion = sum(r.completion_tokens for r in results)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class Completions:
    """The objects of one completion: the whole answer, or its stream chunks (same shape, new text only)."""

    def __init__(self, model: str) -> None:
        self._head = {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
        }

    def response(self, texts: list[str], results: list[GenerationResult]) -> dict[str, Any]:
        choices = [
            {"text": text, "index": i, "logprobs": None, "finish_reason": finish_reason(r.finish_reason)}
            for i, (text, r) in enumerate(zip(texts, results, strict=True))
        ]
        return {**self._head, "choices": choices, "usage": usage(results)}

    def chunk(
        self, index: int, text: str, reason: FinishReason | None = None, *, with_usage: bool = False
    ) -> dict[str, Any]:
        choice = {
            "text": text,
            "index": index,
            "logprobs": None,
            "finish_reason": None if reason is None else finish_reason(reason),
        }
        chunk: dict[str, Any] = {**self._head, "choices": [choice]}
        if with_usage:
            chunk["usage"] = None
        return chunk

    def usage_chunk(self, results: list[GenerationResult]) -> dict[str, Any]:
        """The last chunk when `stream_options.include_usage` is set."""
        return {**self._head, "choices": [], "usage": usage(results)}


OPENAI_PATHS = frozenset({"/v1/completions", "/v1/models"})
"""The OpenAI-compatible routes: every error on them, even one the middleware sends, keeps OpenAI's shape."""
ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """`{"error": {"message", "type", "param", "code"}}`, as the OpenAI API and client have it."""
    kind = ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def model_list(models: list[tuple[str, int]]) -> dict[str, Any]:
    """GET /v1/models: (name, created unix time) of each model that generates text."""
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": created, "owned_by": "nnserve"} for name, created in models
        ],
    }
