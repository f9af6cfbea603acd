"""Validation of sampling parameters and prompts: each bad value is a 400 naming its field."""

from __future__ import annotations

from typing import Any

import pytest

from service.errors import status_for
from service.generation.errors import InvalidGenerationParameter
from service.generation.params import SamplingParams

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (SamplingParams(temperature=-0.1), "temperature"),
        (SamplingParams(temperature=float("nan")), "temperature"),
        (SamplingParams(top_p=0.0), "top_p"),
        (SamplingParams(top_p=1.5), "top_p"),
        (SamplingParams(top_k=-1), "top_k"),
        (SamplingParams(top_k=True), "top_k"),
        (SamplingParams(max_tokens=0), "max_tokens"),
        (SamplingParams(max_tokens=100_000), "max_tokens"),
        (SamplingParams(seed=-1), "seed"),
        (SamplingParams(stop=("",)), "stop"),
    ],
)
async def test_submit_rejects_bad_parameter_naming_field(
    make_engine: Any, params: SamplingParams, field: str
) -> None:
    async with make_engine() as engine:
        with pytest.raises(InvalidGenerationParameter) as info:
            engine.submit("ROMEO:\n", params)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert status_for(info.value) == 400


async def test_submit_rejects_empty_prompt(make_engine: Any) -> None:
    async with make_engine() as engine:
        with pytest.raises(InvalidGenerationParameter, match=r"^prompt: ") as info:
            engine.submit("", SamplingParams())
    assert info.value.field == "prompt"


async def test_submit_rejects_prompt_longer_than_context(make_engine: Any) -> None:
    async with make_engine() as engine:
        context = engine.settings.context_length
        with pytest.raises(InvalidGenerationParameter, match=f"context holds {context} tokens") as info:
            engine.submit("Thou art a villain. " * context, SamplingParams())
    assert info.value.field == "prompt"


async def test_submit_rejects_max_tokens_beyond_context_left(make_engine: Any) -> None:
    async with make_engine() as engine:
        prompt = "Now is the winter of our discontent. " * 30
        prompt_tokens = len(engine.tokenizer.encode(prompt))
        room = engine.settings.context_length - prompt_tokens
        assert 0 < room < engine.settings.max_tokens_limit
        with pytest.raises(InvalidGenerationParameter, match="exceeds the context length") as info:
            engine.submit(prompt, SamplingParams(max_tokens=room + 1))
        assert info.value.field == "max_tokens"
        result = await engine.submit(prompt, SamplingParams(temperature=0)).collect()
    assert result.completion_tokens <= min(room, engine.settings.default_max_tokens)


async def test_submit_rejects_max_tokens_over_model_limit(make_engine: Any) -> None:
    async with make_engine() as engine:
        limit = engine.settings.max_tokens_limit
        with pytest.raises(InvalidGenerationParameter, match=f"limit of {limit}"):
            engine.submit("O", SamplingParams(max_tokens=limit + 1))
