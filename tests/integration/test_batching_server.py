"""Dynamic batching end to end: a real server, real clients, and the server's own statistics as proof."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from sklearn.datasets import load_digits
from testkit.server import Server
from tokenizers import Tokenizer
from tritonclient.utils import InferenceServerException

from .repository import BUNDLED, GATHER_TABLE

Request = tuple[str, dict[str, Any]]
"""(path, JSON body)."""
TOLERANCE = 1e-5
WORDS = [
    *("free", "entry", "win", "cash", "prize", "call", "now", "claim", "your", "reward", "txt", "urgent"),
    *("hey", "are", "we", "still", "on", "for", "lunch", "tomorrow", "I", "will", "be", "late", "sorry"),
    *("see", "you", "at", "home", "later", "ok", "thanks", "80086", "stop", "to", "mobile"),
]


def digit_pixels(count: int) -> np.ndarray:
    """(count, 8, 8) scikit-learn digits, values 0..16, as the bundled digits-cnn takes them."""
    return load_digits().images[:count].astype(np.float32)


def texts(count: int) -> list[str]:
    """Messages of 1 to 60 words, so their token lengths spread over several length bands."""
    rng = np.random.default_rng(7)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 61)))) for _ in range(count)]


def v2_body(**tensors: np.ndarray) -> dict[str, Any]:
    datatypes = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64"}
    return {
        "inputs": [
            {"name": n, "shape": list(a.shape), "datatype": datatypes[a.dtype], "data": a.ravel().tolist()}
            for n, a in tensors.items()
        ]
    }


def digits_v2_requests(model: str, count: int) -> list[Request]:
    """One digit per request, except every fifth request, which carries two."""
    pixels = digit_pixels(count + 1)[:, None]  # (N, 1, 8, 8)
    path = f"/v2/models/{model}/infer"
    return [(path, v2_body(pixels=pixels[i : i + (2 if i % 5 == 4 else 1)])) for i in range(count)]


def digits_predict_requests(count: int) -> list[Request]:
    path = "/v1/models/digits-cnn:predict"
    return [
        (path, {"instances": [image.tolist()], "parameters": {"top_k": 10}}) for image in digit_pixels(count)
    ]


def text_v2_requests(count: int) -> list[Request]:
    """Token ids as the model's tokenizer makes them; every fifth request holds two texts padded to the
    longer one, as `:predict` pads a request."""
    tokenizer = Tokenizer.from_file(str(BUNDLED / "text-transformer" / "1" / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(128)
    encoded = [e.ids for e in tokenizer.encode_batch(texts(count + 1))]
    requests = []
    for i in range(count):
        rows = encoded[i : i + (2 if i % 5 == 4 else 1)]
        width = max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), np.int64)  # (N, T), pad_token_id 0
        mask = np.zeros((len(rows), width), np.int64)
        for row, tokens in enumerate(rows):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        requests.append(("/v2/models/text-transformer/infer", v2_body(input_ids=ids, attention_mask=mask)))
    return requests


def text_predict_requests(count: int) -> list[Request]:
    path = "/v1/models/text-transformer:predict"
    return [(path, {"instances": [text], "parameters": {"top_k": 2}}) for text in texts(count)]


def scores(answer: dict[str, Any]) -> np.ndarray:
    """The numbers of an answer: v2 output data, or each prediction's scores in label order."""
    if "outputs" in answer:
        return np.asarray(answer["outputs"][0]["data"], np.float64)
    return np.asarray(
        [[s["score"] for s in sorted(p["top_k"], key=lambda s: s["label"])] for p in answer["predictions"]]
    )


def send_alone(server: Server, requests: Sequence[Request]) -> list[dict[str, Any]]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answers = []
        for path, body in requests:
            response = client.post(path, json=body)
            assert response.status_code == 200, response.text
            answers.append(response.json())
    return answers


async def _send_together(
    url: str, requests: Sequence[Request], headers: dict[str, str] | None
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=len(requests))
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        return list(
            await asyncio.gather(*(client.post(p, json=b, headers=headers) for p, b in requests))
        )


def send_together(
    server: Server, requests: Sequence[Request], headers: dict[str, str] | None = None
) -> list[httpx.Response]:
    """Every request on its own connection, all in flight at once."""
    return asyncio.run(_send_together(server.url, requests, headers))


def executed_batch_sizes(server: Server, model: str) -> dict[int, int]:
    """Executions per batch size, from the server's statistics."""
    stats = server.statistics(model)
    return {b["batch_size"]: b["compute_infer"]["count"] for b in stats["batch_stats"]}


@pytest.mark.parametrize(
    ("model", "build"),
    [
        ("digits-cnn", lambda n: digits_v2_requests("digits-cnn", n)),
        ("digits-cnn", digits_predict_requests),
        ("digits-two-instances", lambda n: digits_v2_requests("digits-two-instances", n)),
        ("text-transformer", text_v2_requests),
        ("text-transformer", text_predict_requests),
    ],
    ids=["digits-v2", "digits-predict", "digits-two-instances-v2", "text-v2", "text-predict"],
)
def test_concurrent_answers_equal_answers_sent_alone(
    server: Server, model: str, build: Callable[[int], list[Request]]
) -> None:
    requests = build(64)
    alone = send_alone(server, requests)
    before = server.statistics(model)
    together = send_together(server, requests)
    after = server.statistics(model)
    for i, (response, expected) in enumerate(zip(together, alone, strict=True)):
        assert response.status_code == 200, (i, response.text)
        np.testing.assert_allclose(scores(response.json()), scores(expected), atol=TOLERANCE, err_msg=str(i))
    executions = after["execution_count"] - before["execution_count"]
    samples = after["inference_count"] - before["inference_count"]
    assert executions < samples, f"{samples} samples in {executions} executions: nothing was batched"
    assert max(executed_batch_sizes(server, model)) > 1


def test_forced_batch_of_eight_runs_as_one_execution_of_eight(server: Server) -> None:
    bodies = [v2_body(pixels=digit_pixels(8)[i : i + 1, None]) for i in range(8)]
    alone = send_alone(server, [("/v2/models/digits-cnn/infer", body) for body in bodies])
    together = send_together(server, [("/v2/models/digits-exact8/infer", body) for body in bodies])
    for response, expected in zip(together, alone, strict=True):
        assert response.status_code == 200, response.text
        np.testing.assert_allclose(scores(response.json()), scores(expected), atol=TOLERANCE)
    stats = server.statistics("digits-exact8")
    assert (stats["execution_count"], stats["inference_count"]) == (1, 8)
    assert executed_batch_sizes(server, "digits-exact8") == {8: 1}


def test_full_queue_answers_503_with_retry_after(server: Server) -> None:
    """digits-queue waits for 3 requests per batch and queues at most 2: the third is refused at once."""
    body = v2_body(pixels=digit_pixels(1)[:, None])
    path = "/v2/models/digits-queue/infer"

    async def scenario() -> tuple[httpx.Response, list[httpx.Response]]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            queued = [
                asyncio.create_task(client.post(path, json=body, headers={"X-Request-Timeout-Ms": "1500"}))
                for _ in range(2)
            ]
            while 'nnserve_queue_depth{model="digits-queue",version="1"} 2.0' not in (
                await client.get("/metrics")
            ).text:
                await asyncio.sleep(0.01)  # polling interval while the two requests reach the queue
            refused = await client.post(path, json=body)
            return refused, list(await asyncio.gather(*queued))

    started = time.monotonic()
    refused, waiting = asyncio.run(scenario())
    assert refused.status_code == 503
    assert "queue full" in refused.json()["error"]
    retry_after = refused.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) >= 1
    assert [r.status_code for r in waiting] == [504, 504]
    assert time.monotonic() - started >= 1.5
    stats = server.statistics("digits-queue")
    assert stats["execution_count"] == 0 and stats["inference_stats"]["fail"]["count"] == 3
    assert server.metric("nnserve_dropped_requests_total", model="digits-queue", reason="queue_full") == 1


def test_expired_deadline_answers_504_without_running(server: Server) -> None:
    """digits-deadline waits for 2 requests per batch; a lone request meets its deadline in the queue."""
    body = v2_body(pixels=digit_pixels(1)[:, None])
    started = time.monotonic()
    response = httpx.post(
        f"{server.url}/v2/models/digits-deadline/infer", json=body, headers={"X-Request-Timeout-Ms": "200"}
    )
    assert response.status_code == 504 and "deadline exceeded" in response.json()["error"]
    assert time.monotonic() - started >= 0.2
    # tritonclient's own timeout travels as parameters.timeout, in microseconds.
    client = triton.InferenceServerClient(f"{server.host}:{server.port}")
    tensor = triton.InferInput("pixels", [1, 1, 8, 8], "FP32")
    tensor.set_data_from_numpy(digit_pixels(1)[:, None])
    with pytest.raises(InferenceServerException) as raised:
        client.infer("digits-deadline", [tensor], timeout=150_000)
    assert raised.value.status() == "504"
    client.close()
    stats = server.statistics("digits-deadline")
    assert stats["execution_count"] == 0 and stats["inference_stats"]["fail"]["count"] == 2


def test_failing_run_fails_only_its_batch(server: Server) -> None:
    """gather-fail runs batches of exactly 4; one out-of-range index fails its batch, which is then re-run
    one request at a time (NNSERVE_ISOLATE_FAILED_BATCHES): only the bad request fails, the other batch of
    the same burst and the bad request's batch-mates are answered."""
    indices = [0, 1, 2, 3, 9, 1, 2, 3]  # 9: outside the 4-entry table
    requests = [
        ("/v2/models/gather-fail/infer", v2_body(index=np.array([[i]], np.int64))) for i in indices
    ]
    responses = send_together(server, requests)
    codes = [r.status_code for r in responses]
    assert codes == [200] * 4 + [400] + [200] * 3, codes
    for index, response in zip(indices, responses, strict=True):
        if response.status_code == 200:
            assert response.json()["outputs"][0]["data"] == [GATHER_TABLE[index]]
    assert "index" in responses[indices.index(9)].json()["error"]
    events = [json.loads(line).get("event") for line in server.log_text().splitlines() if line.startswith("{")]
    assert "batch_failed_isolating" in events
    stats = server.statistics("gather-fail")
    assert (stats["execution_count"], stats["inference_count"]) == (4, 7)
    assert stats["inference_stats"]["fail"]["count"] == 1


def test_disconnected_client_request_never_runs(server: Server) -> None:
    """digits-disconnect waits for 2 requests per batch. A client sends one and hangs up while it is
    queued; it must leave the queue unrun, so the next two requests run as a batch of exactly 2."""
    body = json.dumps(v2_body(pixels=digit_pixels(1)[:, None])).encode()
    head = (
        f"POST /v2/models/digits-disconnect/infer HTTP/1.1\r\nHost: {server.host}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((server.host, server.port)) as raw:
        raw.sendall(head + body)
        server.wait_for(
            "the request to be queued",
            lambda: server.metric("nnserve_queue_depth", model="digits-disconnect") == 1,
        )
    server.wait_for(
        "the disconnected request to leave the queue",
        lambda: server.metric("nnserve_dropped_requests_total", model="digits-disconnect", reason="cancelled")
        == 1,
    )
    assert server.metric("nnserve_queue_depth", model="digits-disconnect") == 0
    responses = send_together(server, [("/v2/models/digits-disconnect/infer", json.loads(body))] * 2)
    assert [r.status_code for r in responses] == [200, 200]
    stats = server.statistics("digits-disconnect")
    assert (stats["execution_count"], stats["inference_count"]) == (1, 2)
    assert executed_batch_sizes(server, "digits-disconnect") == {2: 1}
    assert stats["inference_stats"]["fail"]["count"] == 1
    assert (
        server.metric("nnserve_requests_total", model="digits-disconnect", endpoint="infer", code="499") == 1
    )


def test_request_metrics_label_only_known_models(server: Server) -> None:
    response = httpx.post(f"{server.url}/v2/models/no-such-model-x1/infer", json={"inputs": []})
    assert response.status_code == 404
    text = httpx.get(f"{server.url}/metrics").text
    assert "no-such-model-x1" not in text
    assert server.metric("nnserve_model_ready", model="digits-cnn", version="1", provider="cpu") == 1


def test_statistics_routes_answer_as_tritonclient_reads_them(server: Server) -> None:
    client = triton.InferenceServerClient(f"{server.host}:{server.port}")
    try:
        assert "statistics" in client.get_server_metadata()["extensions"]
        everything = client.get_inference_statistics()["model_stats"]
        one = client.get_inference_statistics("digits-cnn", "1")["model_stats"]
    finally:
        client.close()
    assert {"digits-cnn", "text-transformer", "gather-fail"} <= {entry["name"] for entry in everything}
    assert [(entry["name"], entry["version"]) for entry in one] == [("digits-cnn", "1")]
    unknown = httpx.get(f"{server.url}/v2/models/no-such-model/stats")
    missing_version = httpx.get(f"{server.url}/v2/models/digits-cnn/versions/9/stats")
    assert unknown.status_code == 404 and "no-such-model" in unknown.json()["error"]
    assert missing_version.status_code == 404 and "version 9 is not found" in missing_version.json()["error"]
