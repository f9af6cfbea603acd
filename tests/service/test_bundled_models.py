"""End to end on the bundled models in models/: tritonclient on every model, :predict per task.

Each test skips (with the reason) only when its model directory is absent.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton
from service_builders import digits_data
from testkit.digits import render_digit
from testkit.server import Server, running_server

from service.schema.config import list_versions, load_config
from training.data.anomalies import ANOMALY_KINDS, make_anomalies

MODELS = Path(__file__).resolve().parents[2] / "models"
BUNDLED = ["digits-cnn", "text-lstm", "text-transformer", "digits-ae", "tiny-gpt"]
SPAM = "WINNER!! You have been selected for a free cash prize of 1000 pounds. Call 09061701461 now to claim"
HAM = "Hi mum, I'll be home for dinner around seven, see you later"


def _need(name: str) -> Path:
    path = MODELS / name
    if not path.is_dir():
        pytest.skip(f"bundled model {name} is absent (train it with `make models`)")
    return path


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not any((MODELS / name).is_dir() for name in BUNDLED):
        pytest.skip(f"no bundled model in {MODELS} (train them with `make models`)")
    log = tmp_path_factory.mktemp("logs") / "bundled.log"
    with running_server(MODELS, log) as server:
        yield server


@pytest.fixture(scope="module")
def client(bundled: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(bundled.host_port)


def test_bundled_repository_is_ready(client: triton.InferenceServerClient) -> None:
    assert client.is_server_ready(), client.get_model_repository_index()


def _session(name: str) -> ort.InferenceSession:
    path = _need(name)
    version = max(list_versions(path))
    return ort.InferenceSession(str(path / str(version) / "model.onnx"), providers=["CPUExecutionProvider"])


def _example_inputs(name: str, metadata: dict[str, Any]) -> dict[str, np.ndarray]:
    """Plausible arrays for any bundled model's signature: batch 2, sequences of 5, empty KV cache."""
    config = load_config(MODELS / name)
    generation = config.generation
    arrays: dict[str, np.ndarray] = {}
    for spec in metadata["inputs"]:
        shape = list(spec["shape"])
        if generation is not None and "past" in spec["name"]:
            shape = [2, generation.n_heads, 0, generation.head_dim]
        else:
            shape = [2 if axis == 0 else (5 if d == -1 else d) for axis, d in enumerate(shape)]
        if spec["datatype"] == "FP32":
            arrays[spec["name"]] = np.random.default_rng(0).uniform(0, 16, shape).astype(np.float32)
        elif generation is not None and spec["name"] == generation.position_ids:
            arrays[spec["name"]] = np.tile(np.arange(shape[1], dtype=np.int64), (shape[0], 1))
        else:
            arrays[spec["name"]] = np.ones(shape, dtype=np.int64)
    return arrays


@pytest.mark.parametrize("name", BUNDLED)
@pytest.mark.parametrize("binary_output", [True, False])
def test_tritonclient_infers_every_bundled_model_like_onnxruntime(
    client: triton.InferenceServerClient, name: str, binary_output: bool
) -> None:
    session = _session(name)
    metadata = client.get_model_metadata(name)
    assert metadata["provider"] == "cpu" and [i["name"] for i in metadata["inputs"]] == [
        i.name for i in session.get_inputs()
    ]
    arrays = _example_inputs(name, metadata)
    inputs = []
    for input_name, array in arrays.items():
        datatype = next(i["datatype"] for i in metadata["inputs"] if i["name"] == input_name)
        tensor = triton.InferInput(input_name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    names = [o["name"] for o in metadata["outputs"]]
    result = client.infer(
        name, inputs, outputs=[triton.InferRequestedOutput(n, binary_data=binary_output) for n in names]
    )
    expected = session.run(names, arrays)
    for output_name, want in zip(names, expected, strict=True):
        np.testing.assert_allclose(result.as_numpy(output_name), want, rtol=1e-4, atol=1e-5)


def _b64(raw: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(raw).decode()}


@pytest.mark.parametrize(
    ("size", "fmt", "dark_ink"), [(8, "PNG", False), (64, "PNG", True), (140, "JPEG", True)]
)
def test_digits_cnn_accuracy_through_http_equals_onnxruntime(
    bundled: Server, size: int, fmt: str, dark_ink: bool
) -> None:
    session = _session("digits-cnn")
    _, _, x, y = digits_data()
    baseline = session.run(None, {session.get_inputs()[0].name: x})[0].argmax(axis=1)
    labels: list[int] = []
    with bundled.client() as http:
        for start in range(0, len(x), 120):
            instances = [_b64(render_digit(d, size, fmt, dark_ink=dark_ink)) for d in x[start : start + 120]]
            response = http.post("/v1/models/digits-cnn:predict", json={"instances": instances})
            assert response.status_code == 200, response.text
            labels += [int(p["label"]) for p in response.json()["predictions"]]
    accuracy = (np.array(labels) == y).mean()
    assert accuracy == (baseline == y).mean() and accuracy > 0.95
    evaluated = _training_metrics("digits-cnn")
    if evaluated is not None:  # what `nnserve-train evaluate` reported on the same test split
        assert accuracy == pytest.approx(evaluated["test"]["accuracy"])


def test_digits_cnn_multipart_upload(bundled: Server) -> None:
    _need("digits-cnn")
    _, _, x, y = digits_data()
    files = [("file", (f"{i}.png", render_digit(x[i], 48, "PNG", dark_ink=True), "image/png")) for i in range(5)]
    with bundled.client() as http:
        response = http.post("/v1/models/digits-cnn:predict", files=files)
    predictions = response.json()["predictions"]
    assert sum(int(p["label"]) == label for p, label in zip(predictions, y[:5], strict=True)) >= 4
    assert all(len(p["top_k"]) == 3 for p in predictions)


@pytest.mark.parametrize("name", ["text-lstm", "text-transformer"])
def test_text_classifiers_tell_spam_from_ham(bundled: Server, name: str) -> None:
    _need(name)
    with bundled.client() as http:
        response = http.post(
            f"/v1/models/{name}:predict", json={"instances": [SPAM, HAM], "parameters": {"top_k": 2}}
        )
    assert response.status_code == 200, response.text
    assert [p["label"] for p in response.json()["predictions"]] == ["spam", "ham"]


def _training_metrics(name: str) -> dict[str, Any] | None:
    path = MODELS / name / str(max(list_versions(MODELS / name))) / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def test_digits_ae_verdicts_through_http_match_the_training_evaluation(bundled: Server) -> None:
    _need("digits-ae")
    evaluated = _training_metrics("digits-ae")
    if evaluated is None or "n_anomalies" not in evaluated["test"]:
        pytest.skip("digits-ae has no metrics.json with the anomaly test set's size")
    _, _, x, _ = digits_data()
    anomalies, _ = make_anomalies(x, per_kind=evaluated["test"]["n_anomalies"] // len(ANOMALY_KINDS))
    images = np.concatenate([x, anomalies])
    with bundled.client() as http:
        response = http.post(
            "/v1/models/digits-ae:predict", json={"instances": [i.reshape(-1).tolist() for i in images]}
        )
    flagged = np.array([p["is_anomaly"] for p in response.json()["predictions"]])
    assert flagged[len(x) :].mean() == pytest.approx(evaluated["test"]["recall"])
    assert flagged[: len(x)].mean() == pytest.approx(evaluated["test"]["false_positive_rate"])


def test_digits_ae_flags_noise_not_digits(bundled: Server) -> None:
    _need("digits-ae")
    _, _, x, _ = digits_data()
    noise = np.random.default_rng(1).uniform(0, 16, (50, 64))
    instances = [d.reshape(-1).tolist() for d in x[:100]] + noise.tolist()
    with bundled.client() as http:
        response = http.post("/v1/models/digits-ae:predict", json={"instances": instances})
    predictions = response.json()["predictions"]
    flagged = np.array([p["is_anomaly"] for p in predictions])
    assert flagged[:100].mean() < 0.2 and flagged[100:].mean() > 0.8
    session = _session("digits-ae")
    config = load_config(MODELS / "digits-ae")
    assert config.anomaly is not None
    scores = session.run([config.anomaly.score], {session.get_inputs()[0].name: x[:5]})[0]
    np.testing.assert_allclose([p["score"] for p in predictions[:5]], scores.reshape(-1), rtol=1e-4)
