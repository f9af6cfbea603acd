"""Calls of the generate extension shared by the tests: JSON answers, and streams read as SSE."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from .sse import SSEParser

MODEL = "tiny-gpt"
GENERATE = f"/v2/models/{MODEL}/generate"
GENERATE_STREAM = f"/v2/models/{MODEL}/generate_stream"
STATS = f"/v2/models/{MODEL}/generate_stats"
PROMPT = "ROMEO:\n"
SAMPLED = {"max_tokens": 24, "temperature": 0.9, "top_k": 50, "top_p": 0.95, "seed": 11}


def generate(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post(GENERATE, json={"text_input": PROMPT, **body})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


@dataclass
class Streamed:
    response: httpx.Response
    events: list[dict[str, Any]]
    parser: SSEParser

    @property
    def text(self) -> str:
        return "".join(event["text_output"] for event in self.events)


def generate_stream(client: httpx.Client, **body: Any) -> Streamed:
    """The whole stream, its events decoded from JSON."""
    parser = SSEParser()
    with client.stream("POST", GENERATE_STREAM, json={"text_input": PROMPT, **body}) as response:
        assert response.status_code == 200, response.read().decode()
        events = [json.loads(event.data) for event in parser.events(response.iter_text())]
    return Streamed(response, events, parser)


def engine_stats(client: httpx.Client) -> dict[str, Any]:
    response = client.get(STATS)
    assert response.status_code == 200, response.text
    stats: dict[str, Any] = response.json()
    return stats
