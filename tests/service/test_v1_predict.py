"""`:predict` against a real server: real PNG/JPEG digits, text, anomaly instances, and every error case."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image
from service_builders import ANOMALY_THRESHOLD, digits_data
from testkit.digits import render_digit
from testkit.server import Server

BATCH = 120


def _b64(raw: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(raw).decode()}


def _predict(http: httpx.Client, model: str, **kwargs: object) -> httpx.Response:
    return http.post(f"/v1/models/{model}:predict", **kwargs)


@pytest.fixture(scope="module")
def reference(repository: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(test images, labels, ONNX Runtime's own predictions on the 8x8 arrays): the evaluation baseline."""
    _, _, x, y = digits_data()
    session = ort.InferenceSession(str(repository / "digits-linear" / "1" / "model.onnx"))
    return x, y, session.run(None, {"pixels": x})[0].argmax(axis=1)


@pytest.mark.parametrize(
    ("size", "fmt", "dark_ink"),
    [(8, "PNG", False), (28, "JPEG", True), (64, "PNG", True), (200, "JPEG", False)],
)
def test_predict_rendered_test_digits_matches_onnxruntime_accuracy(
    server: Server, reference: tuple[np.ndarray, np.ndarray, np.ndarray], size: int, fmt: str, dark_ink: bool
) -> None:
    x, y, baseline = reference
    labels: list[int] = []
    with server.client() as http:
        for start in range(0, len(x), BATCH):
            instances = [_b64(render_digit(d, size, fmt, dark_ink=dark_ink)) for d in x[start : start + BATCH]]
            response = _predict(http, "digits-linear", json={"instances": instances})
            assert response.status_code == 200, response.text
            labels += [int(p["label"]) for p in response.json()["predictions"]]
    predicted = np.array(labels)
    assert (predicted == y).mean() == (baseline == y).mean() > 0.9
    assert (predicted == baseline).mean() >= 0.99


def test_predict_multipart_upload_of_several_files(
    server: Server, reference: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    x, _, baseline = reference
    files = [
        ("file", ("a.png", render_digit(x[0], 40, "PNG", dark_ink=True), "image/png")),
        ("file", ("b.jpg", render_digit(x[1], 80, "JPEG", dark_ink=False), "image/jpeg")),
        ("file", ("c.png", render_digit(x[2], 8, "PNG", dark_ink=False), "image/png")),
    ]
    with server.client() as http:
        response = _predict(http, "digits-linear", files=files, data={"top_k": "2"})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [int(p["label"]) for p in predictions] == baseline[:3].tolist()
    assert all(len(p["top_k"]) == 2 and p["top_k"][0]["label"] == p["label"] for p in predictions)


def test_predict_nested_pixels_are_model_values_and_top_k_is_capped(
    server: Server, reference: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    x, _, baseline = reference
    instances = [x[0].tolist(), x[1][0].tolist(), x[2].reshape(-1).tolist()]  # (1,8,8), (8,8), flat 64
    with server.client() as http:
        response = _predict(http, "digits-linear", json={"instances": instances, "parameters": {"top_k": 50}})
    predictions = response.json()["predictions"]
    assert [int(p["label"]) for p in predictions] == baseline[:3].tolist()
    assert all(len(p["top_k"]) == 10 for p in predictions)
    scores = [entry["score"] for entry in predictions[0]["top_k"]]
    assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0, abs=1e-5)


def test_predict_text_classifies_with_the_model_tokenizer(server: Server) -> None:
    texts = ["WIN a free prize now", "see you at lunch", "claim your cash urgent txt"]
    with server.client() as http:
        response = _predict(http, "spam-bag", json={"instances": texts})
    assert [p["label"] for p in response.json()["predictions"]] == ["spam", "ham", "spam"]


def test_predict_anomaly_scores_vectors_and_images(
    server: Server, reference: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    x, _, _ = reference
    train_x, _, _, _ = digits_data()
    noise = np.random.default_rng(0).uniform(0, 16, 64)
    instances = [x[0].reshape(-1).tolist(), noise.tolist(), _b64(render_digit(x[0], 32, "PNG", dark_ink=False))]
    with server.client() as http:
        response = _predict(http, "digits-mean", json={"instances": instances})
    predictions = response.json()["predictions"]
    expected = float(((x[0] - train_x.mean(axis=0)) ** 2).mean())
    assert predictions[0]["score"] == pytest.approx(expected, rel=1e-4)
    assert predictions[2]["score"] == pytest.approx(expected, rel=1e-2)
    assert [p["is_anomaly"] for p in predictions] == [False, True, False]
    assert all(p["threshold"] == ANOMALY_THRESHOLD for p in predictions)


def test_model_status_lists_versions_and_provider(server: Server) -> None:
    with server.client() as http:
        status = http.get("/v1/models/spam-bag").json()
    assert status == {
        "name": "spam-bag",
        "ready": True,
        "task": "text-classification",
        "versions": [{"version": "1", "state": "READY", "reason": "", "provider": "cpu"}],
    }


def _huge_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (5000, 4000)).save(buffer, format="PNG")  # 20 M pixels, about 20 kB compressed
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("model", "body", "status", "fragment"),
    [
        ("digits-linear", b"{bad json", 400, "not valid JSON"),
        ("digits-linear", b'{"instances": []}', 400, "instances: empty"),
        ("digits-linear", b'{"instances": [1], "parameters": {"top_k": 0}}', 400, "parameters.top_k"),
        (
            "digits-linear",
            b'{"instances": [{"b64": "not base64!"}]}',
            400,
            "instances[0].b64: not valid base64",
        ),
        ("digits-linear", b'{"instances": [{"b64": "aGVsbG8="}]}', 400, "instances[0]: cannot decode image"),
        ("digits-linear", b'{"instances": [{"url": "x"}]}', 400, "instances[0]: an object instance must be"),
        ("digits-linear", b'{"instances": [[1, 2, 3]]}', 400, "shape [3] does not fit"),
        ("digits-linear", b'{"instances": ["seven"]}', 400, "got str"),
        ("spam-bag", b'{"instances": [42]}', 400, "instances[0]: expected a string"),
        ("calculator", b'{"instances": [1]}', 400, "use POST /v2/models/calculator/infer"),
        ("no-such-model", b'{"instances": [1]}', 404, "unknown model"),
    ],
)
def test_predict_bad_input_gets_a_clear_error(
    server: Server, model: str, body: bytes, status: int, fragment: str
) -> None:
    with server.client() as http:
        response = _predict(http, model, content=body)
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]


def test_predict_unknown_version_is_404(server: Server) -> None:
    with server.client() as http:
        response = http.post("/v1/models/digits-linear/versions/3:predict", json={"instances": [[0] * 64]})
        bad = http.post("/v1/models/digits-linear/versions/x1:predict", json={"instances": [[0] * 64]})
    assert response.status_code == 404 and "version 3 is not found" in response.json()["error"]
    assert bad.status_code == 400 and "version: expected a number" in bad.json()["error"]


def test_predict_limits_give_413(server: Server) -> None:
    with server.client() as http:
        many = _predict(http, "digits-linear", json={"instances": [[0] * 64] * 301})
        huge = _predict(http, "digits-linear", files=[("file", ("huge.png", _huge_png(), "image/png"))])
    assert many.status_code == 413 and "max_instances (300)" in many.json()["error"]
    assert huge.status_code == 413 and "5000x4000" in huge.json()["error"]


def test_predict_multipart_mistakes_are_400(server: Server) -> None:
    png = render_digit(np.zeros(64), 8, "PNG", dark_ink=False)
    with server.client() as http:
        no_file = _predict(
            http,
            "digits-linear",
            content=b'--xyz\r\nContent-Disposition: form-data; name="top_k"\r\n\r\n2\r\n--xyz--\r\n',
            headers={"Content-Type": "multipart/form-data; boundary=xyz"},
        )
        unknown = _predict(http, "digits-linear", files={"file": ("a.png", png)}, data={"colour": "red"})
        corrupt = _predict(http, "digits-linear", files={"file": ("a.png", b"\x89PNG\r\n\x1a\nbroken")})
    assert unknown.status_code == 400 and "form field 'colour'" in unknown.json()["error"]
    assert corrupt.status_code == 400 and "files[0] 'a.png': cannot decode image" in corrupt.json()["error"]
    assert no_file.status_code == 400 and "files: no file in the form" in no_file.json()["error"]
