"""Deploying a model to a running server with the unmodified tritonclient.http: `load_model(config=...,
files=...)` (Triton's model-repository extension), written into the repository, with its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
import yaml
from conformance_models import ADMIN_KEY, simple_model
from onnx import TensorProto
from testkit.server import Server
from tritonclient.utils import InferenceServerException


def admin() -> dict[str, str]:
    """A fresh header dict per call: tritonclient adds its own headers to the dict it is given."""
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


TRITON_CONFIG = {
    "name": "uploaded",
    "backend": "onnxruntime",
    "max_batch_size": 4,
    "dynamic_batching": {"preferred_batch_size": [2, 4], "max_queue_delay_microseconds": 250},
    "input": [{"name": f"INPUT{i}", "data_type": "TYPE_INT32", "dims": [16]} for i in (0, 1)],
    "output": [{"name": f"OUTPUT{i}", "data_type": "TYPE_INT32", "dims": [16]} for i in (0, 1)],
}


@pytest.fixture
def client(keyed_server: tuple[Server, Path]) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(keyed_server[0].host_port)


def _infer(client: triton.InferenceServerClient, name: str) -> np.ndarray:
    a = np.arange(32, dtype=np.int32).reshape(2, 16)
    inputs = [triton.InferInput("INPUT0", [2, 16], "INT32"), triton.InferInput("INPUT1", [2, 16], "INT32")]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(a)
    result: np.ndarray = client.infer(name, inputs, headers=admin()).as_numpy("OUTPUT0")
    np.testing.assert_array_equal(result, a + a)
    return result


def test_load_with_config_and_files_deploys_a_new_model(
    keyed_server: tuple[Server, Path], client: triton.InferenceServerClient
) -> None:
    _, root = keyed_server
    model = simple_model()
    client.load_model("uploaded", headers=admin(), config=json.dumps(TRITON_CONFIG), files={"file:1/model.onnx": model})
    assert client.is_model_ready("uploaded")
    _infer(client, "uploaded")
    config = client.get_model_config("uploaded")
    assert config["max_batch_size"] == 4 and [t["dims"] for t in config["input"]] == [[16], [16]]
    assert config["dynamic_batching"] == {"preferred_batch_size": [2, 4], "max_queue_delay_microseconds": 250}
    assert (root / "uploaded" / "1" / "model.onnx").read_bytes() == model
    on_disk = yaml.safe_load((root / "uploaded" / "config.yaml").read_text(encoding="utf-8"))
    assert on_disk["batching"]["max_batch_size"] == 4 and on_disk["inputs"][0]["shape"] == [-1, 16]
    assert not [p.name for p in root.iterdir() if p.name.startswith(".")], "no staging folder left behind"


def test_load_with_files_replaces_the_model_folder(
    keyed_server: tuple[Server, Path], client: triton.InferenceServerClient
) -> None:
    _, root = keyed_server
    config = json.dumps({**TRITON_CONFIG, "name": "simple_copy_4"})
    client.load_model("simple_copy_4", headers=admin(), config=config, files={"file:2/model.onnx": simple_model()})
    assert client.get_model_metadata("simple_copy_4")["versions"] == ["2"]
    assert sorted(p.name for p in (root / "simple_copy_4").iterdir()) == ["2", "config.yaml"]
    _infer(client, "simple_copy_4")


def test_failed_upload_puts_the_previous_model_back(
    keyed_server: tuple[Server, Path], client: triton.InferenceServerClient
) -> None:
    _, root = keyed_server
    before = (root / "simple_copy_2" / "1" / "model.onnx").read_bytes()
    wrong_type = simple_model(dtype=TensorProto.FLOAT)  # the config says INT32
    config = json.dumps({**TRITON_CONFIG, "name": "simple_copy_2"})
    with pytest.raises(InferenceServerException) as failed:
        client.load_model("simple_copy_2", headers=admin(), config=config, files={"file:1/model.onnx": wrong_type})
    assert failed.value.status() == "400"
    assert failed.value.message().startswith("failed to load 'simple_copy_2'")
    assert (root / "simple_copy_2" / "1" / "model.onnx").read_bytes() == before
    assert client.is_model_ready("simple_copy_2")
    _infer(client, "simple_copy_2")
    assert not [p.name for p in root.iterdir() if p.name.startswith(".")]


def test_config_override_is_written_to_config_yaml(
    keyed_server: tuple[Server, Path], client: triton.InferenceServerClient
) -> None:
    _, root = keyed_server
    client.load_model("simple_copy_3", headers=admin(), config='{"max_batch_size": "16"}')
    assert client.get_model_config("simple_copy_3")["max_batch_size"] == 16
    on_disk = yaml.safe_load((root / "simple_copy_3" / "config.yaml").read_text(encoding="utf-8"))
    assert on_disk["batching"]["max_batch_size"] == 16
    with pytest.raises(InferenceServerException) as refused:
        client.load_model("simple_copy_3", headers=admin(), config='{"sequence_batching": {}}')
    assert refused.value.status() == "400" and "sequence_batching not supported" in refused.value.message()
    assert client.get_model_config("simple_copy_3")["max_batch_size"] == 16


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("file:1/../../escaped.onnx", "expected file:<version>/<name>"),
        ("file:../model.onnx", "expected file:<version>/<name>"),
        ("file:1/.hidden", "expected file:<version>/<name>"),
        ("file:0/model.onnx", "expected file:<version>/<name>"),
        ("file:1//model.onnx", "expected file:<version>/<name>"),
    ],
)
def test_upload_names_outside_the_model_folder_are_refused(
    keyed_server: tuple[Server, Path], client: triton.InferenceServerClient, key: str, fragment: str
) -> None:
    _, root = keyed_server
    with pytest.raises(InferenceServerException) as refused:
        client.load_model("sneaky", headers=admin(), config="{}", files={key: b"x"})
    assert refused.value.status() == "400" and fragment in refused.value.message()
    assert not (root / "sneaky").exists() and not (root.parent / "escaped.onnx").exists()


def test_upload_refusals_are_named(keyed_server: tuple[Server, Path], client: triton.InferenceServerClient) -> None:
    server, root = keyed_server
    model = {"file:1/model.onnx": simple_model()}
    with pytest.raises(InferenceServerException) as no_key:
        client.load_model("anon", config="{}", files=model)
    assert no_key.value.status() == "401"
    with pytest.raises(InferenceServerException) as no_config:
        client.load_model("anon", headers=admin(), files=model)
    assert no_config.value.status() == "400" and "need a config parameter" in no_config.value.message()
    with pytest.raises(InferenceServerException) as too_large:
        client.load_model("anon", headers=admin(), config="{}", files={"file:1/model.onnx": b"\0" * 300_000})
    assert too_large.value.status() == "413" and "max_upload_bytes (200000" in too_large.value.message()
    bad_base64 = httpx.post(
        f"{server.url}/v2/repository/models/anon/load",
        json={"parameters": {"config": "{}", "file:1/model.onnx": "not base64!"}},
        headers=admin(),
    )
    assert bad_base64.status_code == 400 and "not valid base64" in bad_base64.json()["error"]
    with pytest.raises(InferenceServerException) as bad_name:
        client.load_model("..", headers=admin(), config="{}", files=model)
    assert bad_name.value.status() in ("400", "404")
    assert not (root / "anon").exists()


def test_upload_needs_keys_configured(server: Server) -> None:
    """The server without keys: uploads are the one load it refuses, as they put new bytes on its disk."""
    client = triton.InferenceServerClient(server.host_port)
    with pytest.raises(InferenceServerException) as refused:
        client.load_model("uploaded", config="{}", files={"file:1/model.onnx": simple_model()})
    assert refused.value.status() == "403" and "NNSERVE_API_KEYS" in refused.value.message()
