"""Generation under hostile or unlucky conditions (issue 16): deadlines, a broken tokenizer, a version
folder moved on disk, degenerate temperatures and out-of-range seeds, on a real server.

The repository holds copies of tiny-gpt changed for each case: `gpt-serial` decodes one sequence at a
time (so a second request waits in the engine's queue), `gpt-patient` likewise but with a long
`batching.timeout_ms`, `gpt-moved` has its version folder moved away once served, and two copies whose
tokenizer is missing or corrupt. The server's NNSERVE_REQUEST_TIMEOUT_MS is short, so a request that
sets no deadline of its own and waits behind another one fails unless its model's config says otherwise.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from testkit.server import Server, running_server

from .sse import SSEParser

MODELS = Path(__file__).resolve().parents[2] / "models"
SERVER_TIMEOUT_MS = 150
HOLD = {"text_input": "ROMEO:\n", "max_tokens": 360, "temperature": 0}
"""A long greedy sequence (it runs to its length) that keeps a one-sequence engine busy."""
PATIENT_HEADERS = {"X-Request-Timeout-Ms": "60000"}


def _copy(root: Path, name: str, *, replace: dict[str, str] | None = None) -> Path:
    target = root / name
    shutil.copytree(MODELS / "tiny-gpt", target)
    config = target / "config.yaml"
    text = config.read_text().replace("name: tiny-gpt", f"name: {name}")
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    config.write_text(text)
    return target


SERIAL = {"max_batch_size: 16": "max_batch_size: 1", "max_tokens_limit: 256": "max_tokens_limit: 370"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("generation-hardening")
    _copy(root, "gpt-serial", replace=SERIAL)
    _copy(root, "gpt-patient", replace={**SERIAL, "max_queue_size: 256": "max_queue_size: 256\n  timeout_ms: 60000"})
    _copy(root, "gpt-moved")
    (_copy(root, "gpt-no-tokenizer") / "1" / "tokenizer.json").unlink()
    (_copy(root, "gpt-bad-tokenizer") / "1" / "tokenizer.json").write_text('{"model": {"type": "BPE", "vocab": [')
    env = {"NNSERVE_REQUEST_TIMEOUT_MS": str(SERVER_TIMEOUT_MS)}
    with running_server(root, tmp_path_factory.mktemp("logs") / "server.log", env=env) as srv:
        yield srv


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


class Holder:
    """Long greedy streams on a one-sequence model, with deadlines of their own: one decoding and the rest
    queued (about 0.25 s each on a fast core); a request sent once all are submitted waits behind them."""

    STREAMS = 4

    def __init__(self, server: Server, model: str) -> None:
        self._server, self._model = server, model
        self.results: list[int] = []
        self._threads = [threading.Thread(target=self._hold) for _ in range(self.STREAMS)]

    def _hold(self) -> None:
        url = f"/v2/models/{self._model}/generate_stream"
        with self._server.client() as http, http.stream("POST", url, json=HOLD, headers=PATIENT_HEADERS) as response:
            events = [json.loads(event.data) for event in SSEParser().events(response.iter_text())]
        self.results.append(events[-1].get("details", {}).get("completion_tokens", -1))

    def _submitted(self) -> int:
        stats = httpx.get(f"{self._server.url}/v2/models/{self._model}/generate_stats", timeout=5).json()
        count: int = stats["requests"]
        return count

    def __enter__(self) -> Holder:
        before = self._submitted()
        for thread in self._threads:
            thread.start()
        self._server.wait_for("the holding streams to be queued", lambda: self._submitted() >= before + self.STREAMS)
        return self

    def __exit__(self, *exc: object) -> None:
        for thread in self._threads:
            thread.join(60)


def test_generation_routes_refuse_a_malformed_timeout_header(client: httpx.Client) -> None:
    headers = {"X-Request-Timeout-Ms": "banana"}
    for path in ("/v2/models/gpt-serial/generate", "/v2/models/gpt-serial/generate_stream"):
        response = client.post(path, json={"text_input": "O", "max_tokens": 2}, headers=headers)
        assert response.status_code == 400, (path, response.text)
        expected = "X-Request-Timeout-Ms: expected a positive number of milliseconds, got 'banana'"
        assert response.json()["error"] == expected
    body = {"model": "gpt-serial", "prompt": "O", "max_tokens": 2}
    response = client.post("/v1/completions", json=body, headers=headers)
    assert response.status_code == 400
    assert "X-Request-Timeout-Ms" in response.json()["error"]["message"]


def _stream_events(client: httpx.Client, url: str, body: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    with client.stream("POST", url, json=body) as response:
        return response.status_code, [json.loads(e.data) for e in SSEParser().events(response.iter_text())]


def test_queued_generation_past_its_deadline_answers_504(server: Server, client: httpx.Client) -> None:
    body = {"text_input": "O", "max_tokens": 2}
    url = "/v2/models/gpt-serial/generate"
    with Holder(server, "gpt-serial") as holder, ThreadPoolExecutor(4) as pool:
        header = pool.submit(client.post, url, json=body, headers={"X-Request-Timeout-Ms": "100"})
        default = pool.submit(client.post, url, json=body)  # NNSERVE_REQUEST_TIMEOUT_MS
        completion = pool.submit(
            client.post, "/v1/completions", json={"model": "gpt-serial", "prompt": "O", "max_tokens": 2}
        )
        stream = pool.submit(_stream_events, client, f"{url}_stream", body)
    for answer in (header.result(), default.result()):
        assert answer.status_code == 504, answer.text
        assert answer.json()["error"].startswith("deadline exceeded after waiting")
    assert completion.result().status_code == 504, completion.result().text
    assert completion.result().json()["error"]["message"].startswith("deadline exceeded")
    status, events = stream.result()
    assert status == 200  # sent before the wait: the deadline's end comes as the stream's error event
    assert [set(event) for event in events] == [{"error"}]
    assert events[0]["error"].startswith("deadline exceeded")
    assert holder.results == [360] * Holder.STREAMS  # the sequences that were decoding ran to their end


def test_model_timeout_ms_wins_over_the_server_default(server: Server, client: httpx.Client) -> None:
    with Holder(server, "gpt-patient"):
        answer = client.post("/v2/models/gpt-patient/generate", json={"text_input": "O", "max_tokens": 2})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("name", ["gpt-no-tokenizer", "gpt-bad-tokenizer"])
def test_generation_model_without_usable_tokenizer_fails_its_load(client: httpx.Client, name: str) -> None:
    ready = client.get(f"/v2/models/{name}/ready")
    assert ready.status_code == 503
    index = {entry["name"]: entry for entry in client.post("/v2/repository/index").json()}
    assert index[name]["state"] == "UNAVAILABLE"
    assert index[name]["reason"].startswith(f"generation.tokenizer: cannot load {name}/1/tokenizer.json: ")
    answer = client.post(f"/v2/models/{name}/generate", json={"text_input": "O", "max_tokens": 2})
    assert answer.status_code == 503
    listed = {model["id"] for model in client.get("/v1/models").json()["data"]}
    assert name not in listed


def test_model_list_survives_a_served_version_folder_moved_on_disk(server: Server, client: httpx.Client) -> None:
    before = {m["id"]: m["created"] for m in client.get("/v1/models").json()["data"]}
    root = Path(server.command[server.command.index("--repository") + 1])
    (root / "gpt-moved" / "1").rename(root / "gpt-moved-1-moved-away")
    answer = client.get("/v1/models")
    assert answer.status_code == 200, answer.text
    assert {m["id"]: m["created"] for m in answer.json()["data"]} == before


def _text(client: httpx.Client, **params: Any) -> str:
    answer = client.post("/v2/models/gpt-serial/generate", json={"text_input": "ROMEO:\n", "max_tokens": 16, **params})
    assert answer.status_code == 200, answer.text
    text: str = answer.json()["text_output"]
    return text


def test_underflowing_temperature_generates_the_greedy_text(client: httpx.Client) -> None:
    greedy = _text(client, temperature=0)
    assert _text(client, temperature=5e-324, seed=1) == greedy
    completion = client.post(
        "/v1/completions", json={"model": "gpt-serial", "prompt": "ROMEO:\n", "max_tokens": 16, "temperature": 5e-324}
    )
    assert completion.json()["choices"][0]["text"] == greedy


@pytest.mark.parametrize("seed", [-1, 2**63])
def test_out_of_range_seed_is_refused_by_every_generation_route(client: httpx.Client, seed: int) -> None:
    generate = client.post("/v2/models/gpt-serial/generate", json={"text_input": "O", "max_tokens": 2, "seed": seed})
    assert generate.status_code == 400
    assert generate.json()["error"].startswith("seed: must be an integer in [0, 2^63-1]")
    body = {"model": "gpt-serial", "prompt": "O", "max_tokens": 2, "seed": seed}
    completion = client.post("/v1/completions", json=body)
    assert completion.status_code == 400, completion.text
    assert completion.json()["error"]["param"] == "seed"
    assert completion.json()["error"]["message"].startswith("seed: must be an integer in [0, 2^63-1]")
