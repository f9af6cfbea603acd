"""A hot reload swaps in a new version with a new engine while the old one finishes its streams."""

from __future__ import annotations

import json
import time

import httpx
from testkit.server import Server

from .generation_client import GENERATE_STREAM, MODEL, PROMPT, engine_stats, generate
from .sse import SSEParser

LOG_TIMEOUT_S = 10.0


def test_reload_finishes_running_stream_then_closes_its_engine(server: Server, client: httpx.Client) -> None:
    body = {"text_input": PROMPT, "max_tokens": 200, "temperature": 0}
    with server.client() as own, own.stream("POST", GENERATE_STREAM, json=body) as response:
        events = SSEParser().events(response.iter_text())
        next(events)
        assert client.post(f"/v2/repository/models/{MODEL}/load").status_code == 200
        fresh = engine_stats(client)
        rest = [json.loads(event.data) for event in events]
    assert fresh["requests"] == 0  # the new version has its own engine
    assert rest[-1]["details"]["finish_reason"] == "length"
    assert rest[-1]["details"]["completion_tokens"] == 200
    assert generate(client, max_tokens=4)["details"]["completion_tokens"] == 4
    assert engine_stats(client)["requests"] == 1
    deadline = time.monotonic() + LOG_TIMEOUT_S
    while "generation_engine_closed" not in server.log.read_text():
        assert time.monotonic() < deadline, "the retired version's engine was not closed"
        time.sleep(0.02)  # polling interval
