"""Concurrent generations share decode steps and get the texts they get alone; a client that goes away
stops its sequence; the Prometheus metrics count what was generated."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from testkit.server import Server

from .generation_client import GENERATE, GENERATE_STREAM, MODEL, PROMPT, engine_stats
from .sse import SSEParser

CONCURRENCY = 8
PROMPTS = ["ROMEO:\n", "JULIET:\nO Romeo, Romeo!", "To be, or not to be", "KING HENRY:\nOnce more unto the breach"]
IDLE_TIMEOUT_S = 30.0


def _bodies() -> list[dict[str, Any]]:
    return [
        {"text_input": PROMPTS[i % len(PROMPTS)], "max_tokens": 40, "temperature": 0.9, "top_k": 50, "seed": 100 + i}
        for i in range(CONCURRENCY)
    ]


def _decode_steps(before: dict[str, Any], after: dict[str, Any]) -> Counter[int]:
    """Decode steps by number of sequences decoded together, between two statistics snapshots."""
    steps = Counter({int(k): v for k, v in after["decode_batch_sizes"].items()})
    steps.subtract({int(k): v for k, v in before["decode_batch_sizes"].items()})
    return +steps


def _when_idle(client: httpx.Client) -> dict[str, Any]:
    """The engine's statistics once every request it took has finished (polled)."""
    deadline = time.monotonic() + IDLE_TIMEOUT_S
    while True:
        stats = engine_stats(client)
        if stats["active"] == stats["waiting"] == 0 and sum(stats["finish_reasons"].values()) == stats["requests"]:
            return stats
        assert time.monotonic() < deadline, f"engine still busy: {stats}"
        time.sleep(0.01)  # polling interval


def test_concurrent_generations_match_solo_and_share_decode_steps(server: Server, client: httpx.Client) -> None:
    bodies = _bodies()
    solo = [client.post(GENERATE, json=body).json() for body in bodies]
    before = _when_idle(client)
    barrier = threading.Barrier(CONCURRENCY)

    def together(body: dict[str, Any]) -> dict[str, Any]:
        with server.client() as own:
            barrier.wait()
            response = own.post(GENERATE, json=body)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        concurrent = list(pool.map(together, bodies))
    after = _when_idle(client)

    assert [a["text_output"] for a in concurrent] == [a["text_output"] for a in solo]
    steps = _decode_steps(before, after)
    assert max(steps) == CONCURRENCY, f"decode steps by batch size: {dict(steps)}"
    # Every token after a sequence's first (which comes from its prefill) was one row of a decode step.
    assert sum(size * count for size, count in steps.items()) == sum(
        a["details"]["completion_tokens"] - 1 for a in concurrent
    )


def test_stream_disconnect_stops_the_sequence(server: Server, client: httpx.Client) -> None:
    body = {"text_input": PROMPT, "max_tokens": 256, "temperature": 0}
    for _ in range(5):  # the client may, rarely, read its first event only after all 256 were made
        before = _when_idle(client)
        with server.client() as own, own.stream("POST", GENERATE_STREAM, json=body) as response:
            first = next(SSEParser().events(response.iter_text()))
        assert first.data.startswith("{")
        after = _when_idle(client)  # the connection closed after one event
        if after["finish_reasons"].get("cancelled", 0) > before["finish_reasons"].get("cancelled", 0):
            break
    else:
        raise AssertionError(f"no sequence was cancelled in 5 disconnects: {after}")
    assert after["generated_tokens"] - before["generated_tokens"] < 256
    assert _samples(client)[("nnserve_active_sequences", ())] == 0


def _samples(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """tiny-gpt's samples from GET /metrics, by name and labels other than model and version."""
    families = text_string_to_metric_families(client.get("/metrics").text)
    return {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k not in ("model", "version")))): s.value
        for family in families
        for s in family.samples
        if s.labels.get("model") == MODEL
    }


def test_metrics_count_tokens_and_time_them(client: httpx.Client) -> None:
    before = _samples(client)
    answer = client.post(GENERATE, json={"text_input": PROMPT, "max_tokens": 12, "temperature": 0}).json()
    after = _samples(client)

    def grew(name: str) -> float:
        return after[(name, ())] - before.get((name, ()), 0.0)

    tokens = answer["details"]["completion_tokens"]
    assert grew("nnserve_generated_tokens_total") == tokens
    assert grew("nnserve_time_to_first_token_seconds_count") == 1
    assert grew("nnserve_time_per_output_token_seconds_count") == tokens - 1
    assert grew("nnserve_batch_size_count") == tokens  # one prefill and tokens - 1 decode steps
    assert after[("nnserve_active_sequences", ())] == 0
    requests = {labels: v for (name, labels), v in after.items() if name == "nnserve_requests_total"}
    assert any(("endpoint", "generate") in labels and ("code", "200") in labels for labels in requests)
