"""OpenAI-compatible completions, driven by the official `openai` client and by raw HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from testkit.server import Server

from .generation_client import MODEL, PROMPT, SAMPLED, generate
from .sse import SSEParser

OPENAI_SAMPLED = {k: v for k, v in SAMPLED.items() if k != "top_k"}


@pytest.fixture
def api(server: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0) as client:
        yield client


def test_openai_completion_matches_generate(api: openai.OpenAI, client: httpx.Client) -> None:
    completion = api.completions.create(model=MODEL, prompt=PROMPT, **OPENAI_SAMPLED)
    expected = generate(client, **OPENAI_SAMPLED)
    [choice] = completion.choices
    assert choice.text == expected["text_output"]
    assert (choice.index, choice.finish_reason) == (0, "length")
    assert completion.object == "text_completion"
    assert completion.model == MODEL
    assert completion.usage is not None
    assert completion.usage.completion_tokens == expected["details"]["completion_tokens"]
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_openai_stream_joins_to_the_completion(api: openai.OpenAI) -> None:
    whole = api.completions.create(model=MODEL, prompt=PROMPT, **OPENAI_SAMPLED)
    chunks = list(api.completions.create(model=MODEL, prompt=PROMPT, stream=True, **OPENAI_SAMPLED))
    assert len(chunks) > 2
    assert "".join(chunk.choices[0].text for chunk in chunks) == whole.choices[0].text
    assert [chunk.choices[0].finish_reason for chunk in chunks] == [None] * (len(chunks) - 1) + ["length"]
    assert len({chunk.id for chunk in chunks}) == 1


def test_openai_stop_string_finishes_with_stop(api: openai.OpenAI) -> None:
    full = api.completions.create(model=MODEL, prompt=PROMPT, max_tokens=32, temperature=0).choices[0].text
    stop = full[8:12]
    stopped = api.completions.create(model=MODEL, prompt=PROMPT, max_tokens=32, temperature=0, stop=stop)
    assert stopped.choices[0].text == full[: full.index(stop)]
    assert stopped.choices[0].finish_reason == "stop"


def test_openai_prompts_and_n_give_indexed_choices(api: openai.OpenAI) -> None:
    prompts = [PROMPT, "JULIET:\n"]
    both = api.completions.create(model=MODEL, prompt=prompts, n=2, **OPENAI_SAMPLED)
    alone = api.completions.create(model=MODEL, prompt=prompts[1], **OPENAI_SAMPLED)
    assert [choice.index for choice in both.choices] == [0, 1, 2, 3]
    assert both.choices[2].text == alone.choices[0].text  # a prompt's first choice uses the seed itself
    assert both.choices[2].text != both.choices[3].text
    streamed: dict[int, str] = {}
    for chunk in api.completions.create(model=MODEL, prompt=prompts, n=2, stream=True, **OPENAI_SAMPLED):
        for choice in chunk.choices:
            streamed[choice.index] = streamed.get(choice.index, "") + choice.text
    assert streamed == {choice.index: choice.text for choice in both.choices}


def test_openai_echo_prepends_the_prompt(api: openai.OpenAI) -> None:
    plain = api.completions.create(model=MODEL, prompt=PROMPT, max_tokens=6, temperature=0)
    echoed = api.completions.create(model=MODEL, prompt=PROMPT, max_tokens=6, temperature=0, echo=True)
    assert echoed.choices[0].text == PROMPT + plain.choices[0].text


def test_openai_raw_stream_has_usage_and_done(client: httpx.Client) -> None:
    body = {"model": MODEL, "prompt": PROMPT, "max_tokens": 5, "stream": True}
    body["stream_options"] = {"include_usage": True}
    parser = SSEParser()
    with client.stream("POST", "/v1/completions", json=body, headers={"Authorization": "Bearer x"}) as response:
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        data = [event.data for event in parser.events(response.iter_text())]
    assert parser.fields == {"data"}
    assert data[-1] == "[DONE]"
    chunks = [json.loads(item) for item in data[:-1]]
    assert all(chunk["usage"] is None for chunk in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 5


def test_openai_lists_only_generation_models(api: openai.OpenAI) -> None:
    assert [model.id for model in api.models.list()] == [MODEL]


BAD_ARGUMENTS: list[tuple[dict[str, Any], str]] = [
    ({"temperature": -0.5}, "temperature"),
    ({"top_p": 1.5}, "top_p"),
    ({"max_tokens": 100_000}, "max_tokens"),
    ({"prompt": ""}, "prompt"),
    ({"prompt": []}, "prompt"),
    ({"prompt": [15, 27, 3]}, "prompt"),
    ({"logprobs": 2}, "logprobs"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"suffix": "the end"}, "suffix"),
    ({"n": 0}, "n"),
    ({"n": 40}, "n"),
    ({"stop": 5}, "stop"),
    ({"model": "digits-cnn"}, "model"),
    ({"extra_body": {"max_new_tokens": 3}}, "max_new_tokens"),
]


@pytest.mark.parametrize(("change", "param"), BAD_ARGUMENTS)
def test_openai_rejects_bad_argument_naming_it(api: openai.OpenAI, change: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        api.completions.create(**{"model": MODEL, "prompt": PROMPT, "max_tokens": 4, **change})
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(f"{param}: ")


def test_openai_unknown_model_is_404_model_not_found(api: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        api.completions.create(model="no-such-model", prompt=PROMPT, max_tokens=4)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "model_not_found"
