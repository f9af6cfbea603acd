"""Triton/KServe conformance over HTTP, each checked with the unmodified tritonclient.http: model config
batching fields, response compression, Triton's error wording and the ready endpoints."""

from __future__ import annotations

import gzip
import zlib

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from conformance_models import COMPRESS_MIN_BYTES
from testkit.server import Server
from tritonclient.utils import InferenceServerException


@pytest.fixture
def client(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.host_port)


def _simple_inputs(rows: int) -> tuple[list[triton.InferInput], np.ndarray, np.ndarray]:
    a = np.arange(rows * 16, dtype=np.int32).reshape(rows, 16)
    b = np.full((rows, 16), -3, dtype=np.int32)
    inputs = [triton.InferInput("INPUT0", [rows, 16], "INT32"), triton.InferInput("INPUT1", [rows, 16], "INT32")]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(b)
    return inputs, a, b


def test_model_config_reports_batching_and_dims_without_the_batch_axis(client: triton.InferenceServerClient) -> None:
    config = client.get_model_config("simple")
    assert config["max_batch_size"] == 8
    assert config["dynamic_batching"] == {"preferred_batch_size": [4, 8], "max_queue_delay_microseconds": 100}
    assert [(t["name"], t["data_type"], t["dims"]) for t in config["input"]] == [
        ("INPUT0", "TYPE_INT32", [16]),
        ("INPUT1", "TYPE_INT32", [16]),
    ]
    assert [t["dims"] for t in config["output"]] == [[16], [16]]
    assert client.get_model_metadata("simple")["inputs"][0]["shape"] == [-1, 16], "metadata keeps full shapes"


def test_model_config_of_a_model_without_batch_axis_has_exact_dims(client: triton.InferenceServerClient) -> None:
    config = client.get_model_config("simple_fixed", model_version="1")
    assert config["max_batch_size"] == 0 and "dynamic_batching" not in config
    assert [t["dims"] for t in config["input"]] == [[1, 16], [1, 16]]


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_infer_response_compressed_as_tritonclient_asks(
    server: Server, client: triton.InferenceServerClient, algorithm: str
) -> None:
    inputs, a, b = _simple_inputs(rows=64)
    outputs = [triton.InferRequestedOutput("OUTPUT0", binary_data=False), triton.InferRequestedOutput("OUTPUT1")]
    result = client.infer("simple", inputs, outputs=outputs, response_compression_algorithm=algorithm)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + b)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - b)
    # the same request on the wire: encoded as Content-Encoding says, and smaller
    with httpx.Client() as http:
        request = http.build_request(
            "POST", f"{server.url}/v2/models/simple/infer", content=_json_infer_body(a, b),
            headers={"Accept-Encoding": algorithm},
        )  # fmt: skip
        wire = http.send(request, stream=True)
        compressed = b"".join(wire.iter_raw())
        wire.close()
    assert wire.headers["content-encoding"] == algorithm and wire.headers["vary"] == "Accept-Encoding"
    plain = gzip.decompress(compressed) if algorithm == "gzip" else zlib.decompress(compressed)
    assert plain.startswith(b'{"model_name":"simple"') and len(compressed) < len(plain) / 2


def test_compression_only_above_the_threshold_and_when_asked(server: Server) -> None:
    small = httpx.get(f"{server.url}/v2/models/simple", headers={"Accept-Encoding": "gzip"})
    assert len(small.content) < COMPRESS_MIN_BYTES and "content-encoding" not in small.headers
    a = np.zeros((64, 16), dtype=np.int32)
    plain = httpx.post(f"{server.url}/v2/models/simple/infer", content=_json_infer_body(a, a),
                       headers={"Accept-Encoding": "identity"})  # fmt: skip
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    refused = httpx.post(f"{server.url}/v2/models/simple/infer", content=_json_infer_body(a, a),
                         headers={"Accept-Encoding": "gzip;q=0, br"})  # fmt: skip
    assert "content-encoding" not in refused.headers


def test_only_inference_answers_are_compressed(server: Server) -> None:
    """As Triton: tritonclient.http.aio asks every endpoint for gzip but decodes only inference answers."""
    response = httpx.get(f"{server.url}/openapi.json", headers={"Accept-Encoding": "gzip, deflate"})
    assert len(response.content) > COMPRESS_MIN_BYTES and "content-encoding" not in response.headers


def test_compressed_answers_from_the_route_behind_the_fast_path(server: Server) -> None:
    """A compressed request body is read by the FastAPI route, not the fast path: its answer is compressed too."""
    a = np.ones((64, 16), dtype=np.int32)
    response = httpx.post(
        f"{server.url}/v2/models/simple/versions/1/infer",
        content=gzip.compress(_json_infer_body(a, a)),
        headers={"Content-Encoding": "gzip", "Accept-Encoding": "deflate"},
    )
    assert response.headers["content-encoding"] == "deflate" and response.json()["outputs"][0]["data"][0] == 2


def _json_infer_body(a: np.ndarray, b: np.ndarray) -> bytes:
    tensors = [("INPUT0", a), ("INPUT1", b)]
    return httpx.Request(
        "POST",
        "http://x",
        json={
            "inputs": [
                {"name": n, "shape": list(t.shape), "datatype": "INT32", "data": t.ravel().tolist()} for n, t in tensors
            ]
        },
    ).content


def test_unknown_model_worded_as_triton(client: triton.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException) as metadata:
        client.get_model_metadata("wrong_model_name")
    assert metadata.value.message() == "Request for unknown model: 'wrong_model_name' is not found"
    inputs, _, _ = _simple_inputs(rows=1)
    with pytest.raises(InferenceServerException) as infer:
        client.infer("wrong_model_name", inputs)
    assert infer.value.message().startswith("Request for unknown model: 'wrong_model_name' is not found")
    with pytest.raises(InferenceServerException) as version:
        client.get_model_metadata("simple", model_version="99")
    assert version.value.message().startswith("Request for unknown model: 'simple' version 99 is not found")


def test_failed_load_worded_as_triton(client: triton.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException) as missing:
        client.load_model("wrong_model_name")
    assert missing.value.message().startswith("failed to load 'wrong_model_name'")
    with pytest.raises(InferenceServerException) as bad_config:
        client.load_model("simple", config='"parameters": {"config": {{"max_batch_size": "16"}}}')
    assert bad_config.value.message().startswith("failed to load 'simple': parameters.config: not valid JSON")
    assert client.is_model_ready("simple"), "a refused override leaves the model serving"


def test_server_metadata_keeps_the_name_nnserve(client: triton.InferenceServerClient) -> None:
    assert client.get_server_metadata()["name"] == "nnserve"


def test_ready_endpoints_answer_200_or_503_with_the_protocol_body(
    server: Server, client: triton.InferenceServerClient
) -> None:
    assert client.is_server_ready() and client.is_model_ready("simple_copy_1")
    assert httpx.get(f"{server.url}/v2/models/simple_copy_1/ready").json() == {"name": "simple_copy_1", "ready": True}
    client.unload_model("simple_copy_1")
    try:
        assert not client.is_model_ready("simple_copy_1")
        answer = httpx.get(f"{server.url}/v2/models/simple_copy_1/ready")
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        body = answer.json()
        assert body["name"] == "simple_copy_1" and body["ready"] is False
        assert body["error"] == body["reason"]
        assert body["error"].startswith("Request for unknown model: 'simple_copy_1' has no available versions")
        assert client.is_server_ready(), "an unloaded model does not make the server unready"
        unknown = httpx.get(f"{server.url}/v2/models/nothing/ready")
        assert unknown.status_code == 404 and not client.is_model_ready("nothing")
    finally:
        client.load_model("simple_copy_1")
    assert client.is_model_ready("simple_copy_1")
