"""Open Inference Protocol v2 on a real server: the unmodified tritonclient.http, and raw HTTP for errors."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest
import tritonclient.http as triton
from service_builders import fit_digits
from testkit.server import Server
from tritonclient.utils import InferenceServerException


@pytest.fixture(scope="module")
def client(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.host_port)


def _pixels(n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 16, (n, 1, 8, 8)).astype(np.float32)


def _expected_probabilities(pixels: np.ndarray) -> np.ndarray:
    weights, bias = fit_digits()
    logits = pixels.reshape(len(pixels), -1).astype(np.float64) @ weights + bias
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _input(name: str, array: np.ndarray, datatype: str, binary: bool = True) -> triton.InferInput:
    tensor = triton.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def test_health_and_metadata_report_server_and_models(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("digits-linear") and client.is_model_ready("digits-linear", "1")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata("digits-linear")
    assert metadata["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]
    assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]
    assert metadata["versions"] == ["1"] and metadata["provider"] == "cpu"
    assert metadata["providers"][0] == "CPUExecutionProvider"


def test_infer_binary_inputs_and_outputs_by_default(client: triton.InferenceServerClient) -> None:
    pixels = _pixels()
    result = client.infer("digits-linear", [_input("pixels", pixels, "FP32")])
    output = result.get_output("probabilities")
    assert output["parameters"]["binary_data_size"] == 3 * 10 * 4
    np.testing.assert_allclose(result.as_numpy("probabilities"), _expected_probabilities(pixels), atol=1e-5)


@pytest.mark.parametrize("binary_input", [True, False])
def test_infer_json_outputs_when_requested(client: triton.InferenceServerClient, binary_input: bool) -> None:
    pixels = _pixels(2, seed=1)
    result = client.infer(
        "digits-linear",
        [_input("pixels", pixels, "FP32", binary=binary_input)],
        outputs=[triton.InferRequestedOutput("probabilities", binary_data=False)],
        request_id="req-7",
    )
    assert result.get_response()["id"] == "req-7"
    assert "data" in result.get_output("probabilities")
    np.testing.assert_allclose(result.as_numpy("probabilities"), _expected_probabilities(pixels), atol=1e-5)


def test_infer_versioned_route_names_the_version(client: triton.InferenceServerClient) -> None:
    result = client.infer("digits-linear", [_input("pixels", _pixels(1), "FP32")], model_version="1")
    assert result.get_response()["model_version"] == "1"


def test_infer_classification_extension_returns_top_labels(client: triton.InferenceServerClient) -> None:
    pixels = _pixels(2, seed=2)
    result = client.infer(
        "digits-linear",
        [_input("pixels", pixels, "FP32")],
        outputs=[triton.InferRequestedOutput("probabilities", class_count=3)],
    )
    top = result.as_numpy("probabilities")
    assert top.shape == (2, 3)
    expected = _expected_probabilities(pixels)
    for row, probs in zip(top, expected, strict=True):
        value, index, label = row[0].decode().split(":")
        assert int(index) == int(np.argmax(probs)) and label == index
        assert float(value) == pytest.approx(probs.max(), abs=1e-5)


@pytest.mark.parametrize("binary", [True, False])
def test_infer_user_model_without_config_handles_fp32_int64_bytes(
    client: triton.InferenceServerClient, binary: bool
) -> None:
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    words = np.array(["héllo".encode(), b"world"], dtype=object)
    inputs = [
        _input("a", a, "FP32", binary),
        _input("b", np.ones((2, 4), np.float32), "FP32", binary),
        _input("counts", np.array([3, -4], dtype=np.int64), "INT64", binary),
        _input("words", words, "BYTES", binary),
    ]
    outputs = [triton.InferRequestedOutput(name, binary_data=binary) for name in ("sum", "doubled", "echo")]
    result = client.infer("calculator", inputs, outputs=outputs)
    np.testing.assert_array_equal(result.as_numpy("sum"), a + 1)
    np.testing.assert_array_equal(result.as_numpy("doubled"), [6, -8])
    echoed = [w.decode() if isinstance(w, bytes) else w for w in result.as_numpy("echo")]
    assert echoed == ["héllo", "world"]
    assert client.get_model_metadata("calculator")["task"] == "tensor"


def test_infer_unknown_model_or_version_is_404(client: triton.InferenceServerClient) -> None:
    tensor = _input("pixels", _pixels(1), "FP32")
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("no-such-model", [tensor])
    assert unknown.value.status() == "404" and "no-such-model" in unknown.value.message()
    with pytest.raises(InferenceServerException) as version:
        client.infer("digits-linear", [tensor], model_version="9")
    assert version.value.status() == "404" and "version 9" in version.value.message()


def _post_infer(
    server: Server, body: bytes, headers: dict[str, str] | None = None, model: str = "digits-linear"
):
    with server.client() as http:
        return http.post(f"/v2/models/{model}/infer", content=body, headers=headers or {})


def _json_request(**tensor: object) -> bytes:
    base = {"name": "pixels", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [0.0] * 64}
    return json.dumps({"inputs": [base | tensor]}).encode()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "body is empty"),
        (b'{"inputs": []}', "inputs"),
        (_json_request(shape=[1, 64]), "shape [1, 64] does not match"),
        (_json_request(datatype="INT64"), "datatype INT64 does not match the model's FP32"),
        (_json_request(data=[0.0] * 63), "needs 64 values, data has 63"),
        (_json_request(data=[[0.0] * 8] * 7 + [[0.0] * 7]), "ragged"),
        (_json_request(data=["a"] * 64), "must be numbers"),
        (_json_request(name="image"), "no such input"),
        (_json_request(datatype="FP33"), "datatype FP33 does not match"),
        (_json_request(dtype="FP32"), "inputs.0.dtype"),
    ],
)
def test_infer_malformed_json_is_400_naming_the_field(server: Server, body: bytes, fragment: str) -> None:
    response = _post_infer(server, body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


def test_infer_nested_json_data_and_integer_check(server: Server) -> None:
    nested = _post_infer(server, _json_request(data=[[[[1.0] * 8] * 8]]))
    assert nested.status_code == 200 and nested.json()["outputs"][0]["shape"] == [1, 10]
    fractional = json.dumps(
        {"inputs": [{"name": "counts", "shape": [1], "datatype": "INT64", "data": [1.5]}]}
    ).encode()
    response = _post_infer(server, fractional, model="calculator")
    assert response.status_code == 400 and "must be integers" in response.json()["error"]


def _binary_request(
    pixels: np.ndarray, declared_size: int | None = None, extra: bytes = b""
) -> tuple[bytes, int]:
    raw = pixels.tobytes()
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "pixels",
                    "shape": list(pixels.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw) if declared_size is None else declared_size},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    return head + raw + extra, len(head)


def test_infer_raw_binary_framing_without_content_type(server: Server) -> None:
    pixels = _pixels(2, seed=3)
    body, length = _binary_request(pixels)
    response = _post_infer(server, body, {"Inference-Header-Content-Length": str(length)})
    assert response.status_code == 200
    header = int(response.headers["inference-header-content-length"])
    meta = json.loads(response.content[:header])
    size = meta["outputs"][0]["parameters"]["binary_data_size"]
    probabilities = np.frombuffer(response.content[header : header + size], dtype="<f4").reshape(2, 10)
    np.testing.assert_allclose(probabilities, _expected_probabilities(pixels), atol=1e-5)


def test_infer_gzip_request_body_is_decompressed(server: Server) -> None:
    body, length = _binary_request(_pixels(1))
    response = _post_infer(
        server,
        gzip.compress(body),
        {"Inference-Header-Content-Length": str(length), "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("declared", "extra", "header", "fragment"),
    [
        (10_000, b"", None, "runs past"),
        (100, b"", None, "needs 256 bytes, binary_data_size is 100"),
        (None, b"\x00\x00", None, "belong to no input"),
        (None, b"", "abc", "ASCII digits"),
        (None, b"", "999999", "outside the body"),
    ],
)
def test_infer_bad_binary_framing_is_400(
    server: Server, declared: int | None, extra: bytes, header: str | None, fragment: str
) -> None:
    body, length = _binary_request(_pixels(1), declared, extra)
    response = _post_infer(server, body, {"Inference-Header-Content-Length": header or str(length)})
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


def test_infer_bad_binary_bytes_element_is_400(server: Server) -> None:
    truncated = struct.pack("<I", 50) + b"short"
    head = json.dumps(
        {
            "inputs": [
                {"name": "a", "shape": [1, 4], "datatype": "FP32", "data": [0, 0, 0, 0]},
                {"name": "b", "shape": [1, 4], "datatype": "FP32", "data": [0, 0, 0, 0]},
                {"name": "counts", "shape": [1], "datatype": "INT64", "data": [1]},
                {"name": "words", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 9}},
            ]
        }
    ).encode()
    response = _post_infer(
        server, head + truncated, {"Inference-Header-Content-Length": str(len(head))}, model="calculator"
    )
    assert response.status_code == 400 and "past the data's end" in response.json()["error"]


def test_request_id_is_echoed_or_generated(server: Server) -> None:
    with server.client() as http:
        given = http.get("/v2/health/live", headers={"X-Request-ID": "trace-42"})
        made = http.get("/v2/health/live")
        hostile = http.get("/v2/health/live", headers={"X-Request-ID": "a b\tc"})
    assert given.headers["x-request-id"] == "trace-42"
    assert len(made.headers["x-request-id"]) == 32
    assert hostile.headers["x-request-id"] != "a b\tc"


def test_model_config_and_unknown_route(server: Server) -> None:
    with server.client() as http:
        config = http.get("/v2/models/spam-bag/config").json()
        missing = http.get("/v2/nothing-here")
    assert [t["data_type"] for t in config["input"]] == ["TYPE_INT64", "TYPE_INT64"]
    assert config["nnserve"]["text"]["max_length"] == 16
    assert missing.status_code == 404 and missing.json() == {"error": "no route GET /v2/nothing-here"}


def test_body_over_the_limit_is_413(server: Server) -> None:
    response = _post_infer(server, b"{" + b" " * 4_000_001 + b"}")
    assert response.status_code == 413
    assert "max_request_bytes" in response.json()["error"]


def test_openapi_documents_every_endpoint_with_examples(server: Server) -> None:
    with server.client() as http:
        spec = http.get("/openapi.json").json()
        docs = http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    operations = [(path, op) for path, item in spec["paths"].items() for op in item.values()]
    assert len(operations) >= 17
    for path, operation in operations:
        assert operation.get("summary") and operation.get("description"), path
        content = operation["responses"]["200"].get("content", {}).get("application/json", {})
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        assert content.get("examples") or body.get("examples"), path
