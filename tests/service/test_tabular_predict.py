"""`:predict` on the configs `nnserve-train fit` writes, against a real server: table rows (objects and
arrays) for tabular classification and tabular anomaly detection, every bad row a 400 naming its column,
many rows batched; colour pictures with mean/std; text with five labels; v2 `infer` on the same models.

The reference for every answer is ONNX Runtime run directly on the feature vector written out by hand
from the contract in `service.schema.tabular`, so the server's row parsing is checked, not reused.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image
from testkit.server import Server, running_server
from testkit.task_models import (
    ANOMALY_THRESHOLD,
    COLOUR_IMAGE,
    COLOUR_LABELS,
    SCHEMA,
    TABLE_LABELS,
    TOPICS,
    build_task_repository,
    write_table_classifier,
)

from service.schema.config import ModelConfig, TensorSpec, load_config, write_config

NAN = math.nan
COLUMNS = [c.name for c in SCHEMA.columns]

ROWS: list[tuple[dict[str, Any], list[float]]] = [
    # row as sent -> the feature vector: age, colour (red, green, blue, unknown), income, code (3, 7.5, true, unknown)
    ({"age": 30, "colour": "red", "income": "52000", "code": 3}, [30, 1, 0, 0, 0, 52000, 1, 0, 0, 0]),
    ({"age": None, "colour": "purple", "income": "", "code": "7.5"}, [NAN, 0, 0, 0, 1, NAN, 0, 1, 0, 0]),
    ({"age": " 61.5 ", "colour": " blue ", "income": "NA", "code": True}, [61.5, 0, 0, 1, 0, NAN, 0, 0, 1, 0]),
    ({"age": "1e2", "colour": None, "income": 1.5e4, "code": 7.5}, [100, 0, 0, 0, 1, 15000, 0, 1, 0, 0]),
    ({"age": -3, "colour": "", "income": "?", "code": 3.0}, [-3, 0, 0, 0, 1, NAN, 0, 0, 0, 1]),
    ({"age": "nan", "colour": "green", "income": 0, "code": None}, [NAN, 0, 1, 0, 0, 0, 0, 0, 0, 1]),
]
"""Covers numbers, numeric strings, null, "", NA tokens, unseen and missing categories, and categorical
values sent as JSON numbers and booleans (compared as the text a JSONL reader writes: 3 -> "3", 3.0 -> "3.0")."""


@pytest.fixture(scope="module")
def task_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = build_task_repository(tmp_path_factory.mktemp("task-repository"))
    # A config whose columns do not fit the graph: its load must fail with the reason, alone.
    write_table_classifier(root, "table-misfit")
    config = load_config(root / "table-misfit")
    narrow = [TensorSpec(name="features", datatype="FP32", shape=[-1, SCHEMA.n_features - 1])]
    write_config(root / "table-misfit", ModelConfig.model_validate({**config.model_dump(), "inputs": narrow}))
    return root


@pytest.fixture(scope="module")
def task_server(task_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("task-logs") / "server.log"
    with running_server(task_repository, log) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(task_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=task_server.url, timeout=30.0) as client:
        yield client


def _graph(repository: Path, name: str) -> ort.InferenceSession:
    return ort.InferenceSession(str(repository / name / "1" / "model.onnx"), providers=["CPUExecutionProvider"])


def _reference(row: dict[str, Any]) -> list[float]:
    """The contract's feature vector for a row of well-formed values, independently of the server's code."""
    out: list[float] = []
    for column in SCHEMA.columns:
        value = row[column.name]
        # A JSON scalar as the text of a JSONL cell: json.dumps writes 3 -> "3", 3.0 -> "3.0", true -> "true".
        text = value.strip() if isinstance(value, str) else None if value is None else json.dumps(value)
        missing = text is None or text.lower() in {"", "na", "n/a", "nan", "null", "none", "?"}
        if column.kind == "numeric":
            out.append(NAN if missing else float(text or "nan"))
        else:
            slots = [0.0] * (len(column.categories) + 1)
            slots[
                len(column.categories) if missing or text not in column.categories else column.categories.index(text)
            ] = 1
            out += slots
    return out


def _predict(http: httpx.Client, model: str, instances: list[Any], **parameters: Any) -> httpx.Response:
    body: dict[str, Any] = {"instances": instances}
    if parameters:
        body["parameters"] = parameters
    return http.post(f"/v1/models/{model}:predict", json=body)


def _scores(prediction: dict[str, Any], labels: list[str]) -> list[float]:
    by_label = {entry["label"]: entry["score"] for entry in prediction["top_k"]}
    return [by_label[label] for label in labels]


def test_predict_table_objects_equal_graph_on_feature_vector(http: httpx.Client, task_repository: Path) -> None:
    features = np.array([vector for _, vector in ROWS], dtype=np.float32)
    (expected,) = _graph(task_repository, "table-mlp").run(None, {"features": features})
    answer = _predict(http, "table-mlp", [row for row, _ in ROWS], top_k=3)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert len(predictions) == len(ROWS)
    for prediction, probabilities in zip(predictions, expected, strict=True):
        assert prediction["label"] == TABLE_LABELS[int(probabilities.argmax())]
        assert prediction["score"] == pytest.approx(float(probabilities.max()), abs=1e-6)
        assert _scores(prediction, TABLE_LABELS) == pytest.approx(probabilities.tolist(), abs=1e-6)


def test_predict_table_arrays_in_column_order_equal_objects(http: httpx.Client) -> None:
    rows = [row for row, _ in ROWS]
    arrays = [[row[name] for name in COLUMNS] for row in rows]
    by_object = _predict(http, "table-mlp", rows).json()["predictions"]
    by_array = _predict(http, "table-mlp", arrays).json()["predictions"]
    assert by_array == by_object


def test_predict_many_rows_batched_equal_graph_row_by_row(http: httpx.Client, task_repository: Path) -> None:
    rng = np.random.default_rng(7)
    colours = ["red", "green", "blue", "mauve", None, ""]
    codes: list[Any] = [3, "7.5", True, "x", None, 3.0]
    rows = [
        {
            "age": None if rng.random() < 0.2 else round(float(rng.normal(40, 15)), 2),
            "colour": colours[rng.integers(len(colours))],
            "income": "" if rng.random() < 0.2 else str(round(float(rng.normal(35000, 9000)), 1)),
            "code": codes[rng.integers(len(codes))],
        }
        for _ in range(400)
    ]
    features = np.array([_reference(row) for row in rows], dtype=np.float32)
    (expected,) = _graph(task_repository, "table-mlp").run(None, {"features": features})
    chunks = [rows[i : i + 50] for i in range(0, len(rows), 50)]
    with ThreadPoolExecutor(len(chunks)) as pool:  # concurrent requests share the model's batches
        answers = list(pool.map(lambda chunk: _predict(http, "table-mlp", chunk, top_k=3), chunks))
    got = []
    for answer in answers:
        assert answer.status_code == 200, answer.text
        got += [_scores(p, TABLE_LABELS) for p in answer.json()["predictions"]]
    np.testing.assert_allclose(np.array(got), expected, atol=1e-6)
    single = _predict(http, "table-mlp", rows[:400:57]).json()["predictions"]
    assert [p["label"] for p in single] == [TABLE_LABELS[int(i)] for i in expected[:400:57].argmax(axis=1)]


GOOD = {"age": 30, "colour": "red", "income": 52000, "code": "3"}
BAD_ROWS: dict[str, tuple[Any, str]] = {
    "unknown-column": (
        {**GOOD, "agee": 31},
        "instances[0]: unknown column(s) 'agee'; the model's columns are 'age', 'colour'",
    ),
    "missing-column": ({k: v for k, v in GOOD.items() if k != "income"}, "instances[0]: missing column(s) 'income'"),
    "not-a-number": ({**GOOD, "age": "thirty"}, "instances[0].age: 'thirty' is not a number"),
    "bool-number": (
        {**GOOD, "income": True},
        "instances[0].income: expected a number for this numeric column, got bool",
    ),
    "list-number": (
        {**GOOD, "income": [1, 2]},
        "instances[0].income: expected a number for this numeric column, got list",
    ),
    "inf-string": ({**GOOD, "age": "inf"}, "instances[0].age: 'inf' is not a finite FP32 number"),
    "beyond-fp32": ({**GOOD, "income": 1e39}, "instances[0].income: '1e+39' is not a finite FP32 number"),
    "object-category": (
        {**GOOD, "colour": {"b64": "x"}},
        "instances[0].colour: expected a string for this categorical column, got dict",
    ),
    "short-array": (
        [30, "red", 52000],
        "instances[0]: 3 values, the model has 4 columns, in this order: 'age', 'colour', 'income', 'code'",
    ),
    "bad-array-value": ([30, "red", "lots", "3"], "instances[0][2] ('income'): 'lots' is not a number"),
    "string-row": ("age=30", "instances[0]: expected an object of column values or an array in column order, got str"),
}


@pytest.mark.parametrize(("row", "message"), BAD_ROWS.values(), ids=BAD_ROWS.keys())
@pytest.mark.parametrize("model", ["table-mlp", "table-ae"])
def test_predict_table_bad_row_is_400_naming_the_column(http: httpx.Client, model: str, row: Any, message: str) -> None:
    answer = _predict(http, model, [row])
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"].startswith(message), answer.json()["error"]


def test_predict_table_bad_second_row_names_its_index(http: httpx.Client) -> None:
    answer = _predict(http, "table-mlp", [GOOD, {**GOOD, "colour": None, "code": ["3"]}])
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("instances[1].code: expected a string")


def test_predict_table_anomaly_answers_score_threshold_verdict(http: httpx.Client, task_repository: Path) -> None:
    rows = [row for row, _ in ROWS] + [{"age": 500, "colour": "red", "income": 1e6, "code": "3"}]
    features = np.array([_reference(row) for row in rows], dtype=np.float32)
    (scores,) = _graph(task_repository, "table-ae").run(None, {"features": features})
    answer = _predict(http, "table-ae", rows)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [set(p) for p in predictions] == [{"score", "threshold", "is_anomaly"}] * len(rows)
    assert [p["score"] for p in predictions] == pytest.approx(scores.tolist(), rel=1e-6)
    assert [p["is_anomaly"] for p in predictions] == [bool(s > ANOMALY_THRESHOLD) for s in scores]
    assert predictions[-1]["is_anomaly"] and not predictions[0]["is_anomaly"]
    assert {p["threshold"] for p in predictions} == {ANOMALY_THRESHOLD}


def test_v2_infer_on_table_model_equals_predict(http: httpx.Client) -> None:
    complete = [(row, vector) for row, vector in ROWS if not any(math.isnan(v) for v in vector)]
    body = {
        "inputs": [
            {
                "name": "features",
                "datatype": "FP32",
                "shape": [len(complete), SCHEMA.n_features],
                "data": [v for _, vector in complete for v in vector],
            }
        ]
    }
    infer = http.post("/v2/models/table-mlp/infer", json=body)
    assert infer.status_code == 200, infer.text
    probabilities = np.array(infer.json()["outputs"][0]["data"]).reshape(len(complete), -1)
    predictions = _predict(http, "table-mlp", [row for row, _ in complete]).json()["predictions"]
    for prediction, row in zip(predictions, probabilities, strict=True):
        assert _scores(prediction, TABLE_LABELS) == pytest.approx(row.tolist(), abs=1e-6)


def test_load_of_table_config_that_misfits_graph_fails_alone(http: httpx.Client) -> None:
    status = http.get("/v1/models/table-misfit").json()
    assert not status["ready"]
    assert "features" in status["versions"][0]["reason"], status
    assert http.get("/v1/models/table-mlp").json()["ready"]


def _png(colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_predict_colour_picture_normalised_per_channel(http: httpx.Client) -> None:
    """A flat colour at twice the model's 20x12 arrives as (value/255 - mean) / std per channel."""
    colour = (200, 90, 40)
    answer = http.post("/v1/models/colour-means:predict", files={"file": ("flat.png", _png(colour, (40, 24)))})
    assert answer.status_code == 200, answer.text
    assert COLOUR_IMAGE.mean is not None and COLOUR_IMAGE.std is not None
    means = np.array([(c / 255 - m) / s for c, m, s in zip(colour, COLOUR_IMAGE.mean, COLOUR_IMAGE.std, strict=True)])
    softmax = np.exp(means) / np.exp(means).sum()
    prediction = answer.json()["predictions"][0]
    assert _scores(prediction, COLOUR_LABELS) == pytest.approx(softmax.tolist(), abs=1e-5)
    assert prediction["label"] == "red"


@pytest.mark.parametrize("size", [(7, 300), (1000, 3), (1, 1), (20, 12)])
def test_predict_colour_picture_of_any_size(http: httpx.Client, size: tuple[int, int]) -> None:
    """Any size is letterboxed to the model's 20x12 (the padding takes the border's grey level)."""
    answer = http.post("/v1/models/colour-means:predict", files={"file": ("any.png", _png((10, 10, 220), size))})
    assert answer.status_code == 200, answer.text
    prediction = answer.json()["predictions"][0]
    assert sum(_scores(prediction, COLOUR_LABELS)) == pytest.approx(1.0, abs=1e-5)
    if size == (20, 12):  # same aspect ratio: no padding, the blue dominates
        assert prediction["label"] == "blue"


def test_predict_text_with_five_labels_ranks_them_all(http: httpx.Client) -> None:
    answer = _predict(http, "topics", ["rain and snow then sunny by train", "goal"], top_k=5)
    assert answer.status_code == 200, answer.text
    first, second = answer.json()["predictions"]
    assert first["label"] == "weather" and [e["label"] for e in first["top_k"]][1] == "travel"
    assert sorted(e["label"] for e in first["top_k"]) == sorted(TOPICS)
    assert second["label"] == "sport"
    default = _predict(http, "topics", ["song"]).json()["predictions"][0]
    assert default["label"] == "music" and len(default["top_k"]) == 3
