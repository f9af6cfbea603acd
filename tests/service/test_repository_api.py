"""Repository extension against real servers: index, load/unload, hot reload under load, broken models."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from service_builders import write_corrupt_model, write_digits_classifier, write_user_model
from testkit.server import Server, running_server
from tritonclient.utils import InferenceServerException

from service.schema.config import ModelConfig, TensorSpec, write_config

CALCULATOR_REQUEST = {
    "inputs": [
        {"name": "a", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
        {"name": "b", "shape": [1, 4], "datatype": "FP32", "data": [1, 1, 1, 1]},
        {"name": "counts", "shape": [1], "datatype": "INT64", "data": [5]},
        {"name": "words", "shape": [1], "datatype": "BYTES", "data": ["x"]},
    ]
}


@pytest.fixture(scope="module")
def client(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.host_port)


@pytest.fixture
def fresh_model(repository: Path, client: triton.InferenceServerClient) -> Iterator[str]:
    """A user model that appears on disk while the server runs; removed (and unloaded) afterwards."""
    name = "dropped-in"
    write_user_model(repository, name)
    yield name
    client.unload_model(name)
    shutil.rmtree(repository / name)


def test_index_lists_every_model_ready(client: triton.InferenceServerClient) -> None:
    rows = {row["name"]: row for row in client.get_model_repository_index()}
    assert {"calculator", "digits-linear", "digits-mean", "spam-bag"} <= set(rows)
    assert all(row["state"] == "READY" and row["version"] == "1" for row in rows.values())


def test_load_serves_a_model_added_to_disk_and_unload_stops_it(
    server: Server, client: triton.InferenceServerClient, fresh_model: str
) -> None:
    states = {row["name"]: row["state"] for row in client.get_model_repository_index()}
    assert states[fresh_model] == "UNAVAILABLE"
    with server.client() as http:
        assert http.post(f"/v2/models/{fresh_model}/infer", json=CALCULATOR_REQUEST).status_code == 503
    client.load_model(fresh_model)
    assert client.is_model_ready(fresh_model)
    with server.client() as http:
        assert http.post(f"/v2/models/{fresh_model}/infer", json=CALCULATOR_REQUEST).status_code == 200
    client.unload_model(fresh_model)
    assert not client.is_model_ready(fresh_model)
    assert client.is_server_ready(), "an unloaded model must not make the server unready"
    with server.client() as http:
        refused = http.post(f"/v2/models/{fresh_model}/infer", json=CALCULATOR_REQUEST)
        ready = http.get(f"/v2/models/{fresh_model}/ready")
    assert refused.status_code == 503 and "unloaded" in refused.json()["error"]
    assert refused.headers["retry-after"] == "1"
    assert ready.status_code == 503 and ready.json()["ready"] is False
    client.load_model(fresh_model)


def test_hot_reload_swaps_version_without_failing_requests_in_flight(
    repository: Path, server: Server, client: triton.InferenceServerClient, fresh_model: str
) -> None:
    client.load_model(fresh_model)
    failures: list[str] = []
    versions: set[str] = set()
    answered, saw_new, stop = threading.Event(), threading.Event(), threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            while not stop.is_set():
                response = http.post(f"/v2/models/{fresh_model}/infer", json=CALCULATOR_REQUEST)
                if response.status_code != 200:
                    failures.append(response.text)
                    continue
                versions.add(response.json()["model_version"])
                answered.set()
                if versions == {"1", "2"}:
                    saw_new.set()

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        assert answered.wait(timeout=30)
        write_user_model(repository, fresh_model, version=2)
        client.load_model(fresh_model)  # default policy latest 1: version 2 replaces version 1
        client.load_model(fresh_model)  # and a reload of the same version swaps again
        assert saw_new.wait(timeout=30)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert client.get_model_metadata(fresh_model)["versions"] == ["2"]
    with pytest.raises(InferenceServerException) as gone:
        client.infer(fresh_model, [], model_version="1")
    assert gone.value.status() == "404"


def test_reload_that_fails_keeps_the_served_version(
    repository: Path, client: triton.InferenceServerClient, fresh_model: str
) -> None:
    client.load_model(fresh_model)
    (repository / fresh_model / "9").mkdir()
    (repository / fresh_model / "9" / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(InferenceServerException) as failed:
        client.load_model(fresh_model)
    assert failed.value.status() == "400" and "keep serving" in failed.value.message()
    assert client.is_model_ready(fresh_model)


def test_load_errors(client: triton.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException) as missing:
        client.load_model("not-on-disk")
    assert missing.value.status() == "404"
    with pytest.raises(InferenceServerException) as config:
        client.load_model("calculator", config='{"sequence_batching": {}}')
    assert config.value.status() == "400" and "parameters.config: sequence_batching" in config.value.message()


@pytest.fixture(scope="module")
def broken_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Good models beside a corrupt file, bad YAML, an unknown task and a config contradicting its graph."""
    root = tmp_path_factory.mktemp("broken-repository")
    write_digits_classifier(root)
    write_user_model(root)
    write_corrupt_model(root)
    write_user_model(root, "bad-yaml")
    (root / "bad-yaml" / "config.yaml").write_text("task: [unclosed\n")
    write_user_model(root, "bad-task")
    (root / "bad-task" / "config.yaml").write_text("task: regression\n")
    write_digits_classifier(root, "bad-shape")
    write_config(
        root / "bad-shape",
        ModelConfig(inputs=[TensorSpec(name="pixels", datatype="FP32", shape=[-1, 1, 28, 28])]),
    )
    log = tmp_path_factory.mktemp("logs") / "broken.log"
    with running_server(root, log, env={"NNSERVE_API_KEY": "sesame"}) as server:
        yield server


def test_broken_models_are_not_ready_with_reasons_while_others_serve(broken_server: Server) -> None:
    with broken_server.client() as http:
        ready = http.get("/v2/health/ready")
        index = {row["name"]: row for row in http.post("/v2/repository/index").json()}
        served = http.post("/v2/models/calculator/infer", json=CALCULATOR_REQUEST)
        metadata = http.get("/v2/models/broken")
        status = http.get("/v1/models/bad-shape").json()
    assert ready.status_code == 503
    assert set(ready.json()["models"]) == {"broken", "bad-yaml", "bad-task", "bad-shape"}
    assert index["digits-linear"]["state"] == index["calculator"]["state"] == "READY"
    assert "cannot load ONNX model" in index["broken"]["reason"]
    assert "invalid YAML" in index["bad-yaml"]["reason"]
    assert "task" in index["bad-task"]["reason"] and "regression" in index["bad-task"]["reason"]
    assert "dimension 2 is 28 in config.yaml but 8 in the graph" in index["bad-shape"]["reason"]
    assert served.status_code == 200
    assert metadata.status_code == 503 and "cannot load ONNX model" in metadata.json()["error"]
    assert status["ready"] is False and "dimension 2" in status["versions"][0]["reason"]
    assert "model_load_failed" in broken_server.log_text()
    assert "Traceback" not in metadata.text


def test_repository_changes_need_the_api_key(broken_server: Server) -> None:
    with broken_server.client() as http:
        denied = http.post("/v2/repository/models/calculator/load")
        allowed = http.post(
            "/v2/repository/models/calculator/load", headers={"Authorization": "Bearer sesame"}
        )
        index = http.post("/v2/repository/index", json={"ready": True})
    assert denied.status_code == 401 and "API key" in denied.json()["error"]
    assert allowed.status_code == 200 and allowed.content == b""
    assert sorted(row["name"] for row in index.json()) == ["calculator", "digits-linear"]


def test_health_live_while_not_ready(broken_server: Server) -> None:
    client = triton.InferenceServerClient(broken_server.host_port)
    assert client.is_server_live() and not client.is_server_ready()
    assert client.is_model_ready("digits-linear") and not client.is_model_ready("broken")
    np.testing.assert_array_equal(
        client.infer("calculator", _calculator_inputs()).as_numpy("doubled"), np.array([10], dtype=np.int64)
    )


def _calculator_inputs() -> list[triton.InferInput]:
    arrays = {
        "a": (np.ones((1, 4), np.float32), "FP32"),
        "b": (np.ones((1, 4), np.float32), "FP32"),
        "counts": (np.array([5], np.int64), "INT64"),
        "words": (np.array([b"x"], dtype=object), "BYTES"),
    }
    inputs = []
    for name, (array, datatype) in arrays.items():
        tensor = triton.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return inputs
