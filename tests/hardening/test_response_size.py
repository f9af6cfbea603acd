"""The size of a v2 infer answer is bounded: each output at most once, and the answer's tensor bytes at
most `max_response_bytes` (a 0.84 MB request listing one output 5,000 times once built a 410 MB answer)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .payloads import INFER_DIGIT, infer_pixels
from .repository import copy_bundled
from .server import Server, serving

INFER = "/v2/models/digits-cnn/infer"
SMALL_LIMIT = 2_000
"""Bytes: 50 answers of 10 FP32 probabilities."""


def test_output_requested_twice_gets_400_naming_it(server: Server) -> None:
    outputs = [{"name": "probabilities"}] * 5_000
    response = httpx.post(f"{server.url}{INFER}", json={**INFER_DIGIT, "outputs": outputs}, timeout=10)
    assert response.status_code == 400, response.text[:300]
    assert "outputs[1] 'probabilities'" in response.json()["error"]
    assert "twice" in response.json()["error"]


def test_output_requested_once_is_answered_once(server: Server) -> None:
    body = {**INFER_DIGIT, "outputs": [{"name": "probabilities"}]}
    response = httpx.post(f"{server.url}{INFER}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    assert [o["name"] for o in response.json()["outputs"]] == ["probabilities"]


@pytest.fixture(scope="module")
def small_answers_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("response-size")
    root = base / "models"
    root.mkdir()
    copy_bundled(root, "digits-cnn")
    with serving(
        Path(root).resolve(), base / "server.log", env={"NNSERVE_MAX_RESPONSE_BYTES": str(SMALL_LIMIT)}
    ) as srv:
        yield srv


@pytest.mark.parametrize("binary", [False, True])
def test_answer_over_max_response_bytes_gets_413_naming_the_limit(small_answers_server: Server, binary: bool) -> None:
    batch = SMALL_LIMIT // 40 + 1
    body = infer_pixels([0.0] * 64 * batch, shape=[batch, 1, 8, 8])
    body["outputs"] = [{"name": "probabilities", "parameters": {"binary_data": binary}}]
    response = httpx.post(f"{small_answers_server.url}{INFER}", json=body, timeout=10)
    assert response.status_code == 413, response.text[:300]
    assert "max_response_bytes" in response.json()["error"]
    assert "probabilities" in response.json()["error"]


def test_answer_within_max_response_bytes_is_served(small_answers_server: Server) -> None:
    batch = SMALL_LIMIT // 40
    body = infer_pixels([0.0] * 64 * batch, shape=[batch, 1, 8, 8])
    response = httpx.post(f"{small_answers_server.url}{INFER}", json=body, timeout=10)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["outputs"][0]["shape"] == [batch, 10]
