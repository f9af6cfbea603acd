"""The generate extension over a real server: sampling, stop conditions, streaming, errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .generation_client import (
    GENERATE,
    GENERATE_STREAM,
    MODEL,
    PROMPT,
    SAMPLED,
    generate,
    generate_stream,
)


def test_generate_repeats_text_with_same_seed(client: httpx.Client) -> None:
    first = generate(client, **SAMPLED)
    again = generate(client, **SAMPLED)
    other = generate(client, **{**SAMPLED, "seed": SAMPLED["seed"] + 1})
    assert first["text_output"] == again["text_output"]
    assert first["text_output"] != other["text_output"]
    assert (first["model_name"], first["model_version"]) == (MODEL, "1")


def test_generate_greedy_equals_temperature_zero(client: httpx.Client) -> None:
    zero = generate(client, max_tokens=32, temperature=0, seed=1)
    top_one = generate(client, max_tokens=32, temperature=1.0, top_k=1, seed=2)
    assert zero["text_output"] == top_one["text_output"]
    assert zero["details"]["completion_tokens"] == 32


def test_generate_cuts_text_before_stop_string(client: httpx.Client) -> None:
    full = generate(client, max_tokens=32, temperature=0)["text_output"]
    stop = full[10:14]  # a piece in the middle of the greedy text
    expected = full[: full.index(stop)]
    stopped = generate(client, max_tokens=32, temperature=0, stop=["never in this text", stop])
    streamed = generate_stream(client, max_tokens=32, temperature=0, stop=stop)
    assert stopped["text_output"] == expected
    assert stopped["details"]["finish_reason"] == "stop_sequence"
    assert streamed.text == expected
    assert streamed.events[-1]["details"]["finish_reason"] == "stop_sequence"


def test_generate_ends_at_max_tokens(client: httpx.Client) -> None:
    answer = generate(client, max_tokens=5, temperature=0)
    assert answer["details"]["completion_tokens"] == 5
    assert answer["details"]["finish_reason"] == "length"
    assert answer["details"]["prompt_tokens"] > 0


def test_generate_reads_parameters_object_as_top_level(client: httpx.Client) -> None:
    top_level = generate(client, **SAMPLED)
    nested = generate(client, parameters=SAMPLED)
    assert nested["text_output"] == top_level["text_output"]


def test_generate_on_version_route_echoes_id(client: httpx.Client) -> None:
    response = client.post(
        f"/v2/models/{MODEL}/versions/1/generate",
        json={"id": "req-7", "text_input": PROMPT, "max_tokens": 4, "details": False},
    )
    assert response.status_code == 200, response.text
    assert response.json().keys() == {"id", "model_name", "model_version", "text_output"}
    assert response.json()["id"] == "req-7"


def test_generate_stream_joins_to_the_same_text(client: httpx.Client) -> None:
    whole = generate(client, **SAMPLED)
    streamed = generate_stream(client, **SAMPLED)
    assert streamed.response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert streamed.parser.fields == {"data"}  # no event: or id: lines
    assert len(streamed.events) > 2
    assert streamed.text == whole["text_output"]
    assert [event["done"] for event in streamed.events] == [False] * (len(streamed.events) - 1) + [True]
    assert all(event["text_output"] for event in streamed.events[:-1])
    assert streamed.events[-1]["details"]["completion_tokens"] == whole["details"]["completion_tokens"]


BAD_REQUESTS: list[tuple[dict[str, Any], str]] = [
    ({"temperature": -1}, "temperature"),
    ({"top_p": 1.5}, "top_p"),
    ({"top_k": -3}, "top_k"),
    ({"max_tokens": 100_000}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"seed": -1}, "seed"),
    ({"text_input": ""}, "text_input"),
    ({"stop": [""]}, "stop"),
    ({"temperature": "hot"}, "temperature"),
    ({"max_new_tokens": 8}, "max_new_tokens"),
    ({"max_tokens": 4, "parameters": {"max_tokens": 5}}, "max_tokens"),
]


@pytest.mark.parametrize("path", [GENERATE, GENERATE_STREAM])
@pytest.mark.parametrize(("change", "field"), BAD_REQUESTS)
def test_generate_rejects_bad_parameter_naming_it(
    client: httpx.Client, path: str, change: dict[str, Any], field: str
) -> None:
    response = client.post(path, json={"text_input": PROMPT, **change})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"].startswith(f"{field}: ")


def test_generate_rejects_body_that_is_not_json(client: httpx.Client) -> None:
    response = client.post(GENERATE, content=b"text_input=hello")
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]


def test_generate_rejects_stream_flag_of_the_other_endpoint(client: httpx.Client) -> None:
    response = client.post(GENERATE, json={"text_input": PROMPT, "parameters": {"stream": True}})
    assert response.status_code == 400
    assert response.json()["error"].startswith("stream: ")


def test_generate_unknown_model_is_404(client: httpx.Client) -> None:
    response = client.post("/v2/models/no-such-model/generate", json={"text_input": PROMPT})
    assert response.status_code == 404
    assert "no-such-model" in response.json()["error"]


def test_generate_with_model_that_does_not_generate_is_400(client: httpx.Client) -> None:
    response = client.post("/v2/models/digits-cnn/generate_stream", json={"text_input": PROMPT})
    assert response.status_code == 400
    assert response.json()["error"].startswith("model: 'digits-cnn' does not generate text")
