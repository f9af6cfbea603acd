"""Sampling parameters of one request and their validation against the model's generation settings."""

from __future__ import annotations

import math
from dataclasses import dataclass

from service.generation.errors import InvalidGenerationParameter
from service.schema.config import GenerationSettings

MAX_STOP_STRINGS = 16
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class SamplingParams:
    """What a client may ask for. Defaults follow the OpenAI completions API."""

    max_tokens: int | None = None
    """None = the model's `generation.default_max_tokens` (shortened to fit the context)."""
    temperature: float = 1.0
    """0 = greedy (argmax); otherwise logits are divided by it before sampling. A temperature so small
    that the division overflows (e.g. 5e-324) is greedy too: sampling's limit as it goes to 0."""
    top_k: int = 0
    """Keep only the k most likely tokens; 0 = no limit."""
    top_p: float = 1.0
    """Nucleus sampling: keep the smallest set of likeliest tokens whose probability reaches top_p."""
    seed: int | None = None
    """Same seed, same prompt, same parameters -> same text, whatever else is being decoded alongside."""
    stop: tuple[str, ...] = ()
    """Generation ends before the first occurrence of any of these; the stop string is not returned."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) and math.isfinite(value)


def check_params(params: SamplingParams) -> None:
    """Range checks that need no model; raises InvalidGenerationParameter naming the field."""
    if not _is_number(params.temperature) or params.temperature < 0:
        raise InvalidGenerationParameter("temperature", f"must be a number >= 0, got {params.temperature!r}")
    if not _is_int(params.top_k) or params.top_k < 0:
        raise InvalidGenerationParameter("top_k", f"must be an integer >= 0 (0 = off), got {params.top_k!r}")
    if not _is_number(params.top_p) or not 0 < params.top_p <= 1:
        raise InvalidGenerationParameter("top_p", f"must be in (0, 1], got {params.top_p!r}")
    check_seed(params.seed)
    if len(params.stop) > MAX_STOP_STRINGS:
        raise InvalidGenerationParameter(
            "stop", f"takes at most {MAX_STOP_STRINGS} strings, got {len(params.stop)}"
        )
    for text in params.stop:
        if not isinstance(text, str) or not text:
            raise InvalidGenerationParameter("stop", f"entries must be non-empty strings, got {text!r}")


def check_seed(seed: object) -> None:
    """The one seed rule of every route (generate extension and OpenAI completions): None or an
    integer in [0, 2^63-1]; anything else is refused, never wrapped into range."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED):
        raise InvalidGenerationParameter("seed", f"must be an integer in [0, 2^63-1], got {seed!r}")


def resolve_max_tokens(params: SamplingParams, prompt_tokens: int, settings: GenerationSettings) -> int:
    """Tokens to generate at most, checked against the limit and the context left after the prompt."""
    if prompt_tokens == 0:
        raise InvalidGenerationParameter("prompt", "must not be empty")
    room = settings.context_length - prompt_tokens
    if room < 1:
        raise InvalidGenerationParameter(
            "prompt",
            f"is {prompt_tokens} tokens; the model's context holds {settings.context_length} tokens "
            "including the generated ones",
        )
    if params.max_tokens is None:
        return min(settings.default_max_tokens, settings.max_tokens_limit, room)
    if not _is_int(params.max_tokens) or params.max_tokens < 1:
        raise InvalidGenerationParameter("max_tokens", f"must be an integer >= 1, got {params.max_tokens!r}")
    if params.max_tokens > settings.max_tokens_limit:
        raise InvalidGenerationParameter(
            "max_tokens", f"{params.max_tokens} is over this model's limit of {settings.max_tokens_limit}"
        )
    if params.max_tokens > room:
        raise InvalidGenerationParameter(
            "max_tokens",
            f"{params.max_tokens} plus the prompt's {prompt_tokens} tokens exceeds the context length "
            f"{settings.context_length}",
        )
    return params.max_tokens
