"""Deploying over gRPC with the unmodified tritonclient.grpc: `load_model(config=..., files=...)` sends
Triton's `config` (string_param) and `file:<version>/<name>` (bytes_param) parameters, which are written
into the repository under the HTTP load's rules: a full-access key, named refusals, the old state kept
when the load fails."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from grpc_repository import write_simple_model
from grpc_servers import ADMIN_KEY, INFERENCE_KEY, GrpcServer
from tritonclient.utils import InferenceServerException

TRITON_CONFIG = {
    "backend": "onnxruntime",
    "max_batch_size": 4,
    "dynamic_batching": {"preferred_batch_size": [2, 4], "max_queue_delay_microseconds": 250},
    "input": [{"name": f"INPUT{i}", "data_type": "TYPE_INT32", "dims": [16]} for i in (0, 1)],
    "output": [{"name": f"OUTPUT{i}", "data_type": "TYPE_INT32", "dims": [16]} for i in (0, 1)],
}


def admin() -> dict[str, str]:
    return {"authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Triton's `simple` (INPUT0 + INPUT1, INPUT0 - INPUT1) as ONNX bytes."""
    root = tmp_path_factory.mktemp("upload")
    write_simple_model(root)
    return Path(root / "simple" / "1" / "model.onnx").read_bytes()


@pytest.fixture()
def guarded(guarded_server: GrpcServer) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(guarded_server.grpc_url)


def _sum(client: grpcclient.InferenceServerClient, name: str) -> np.ndarray:
    a = np.arange(32, dtype=np.int32).reshape(2, 16)
    inputs = [grpcclient.InferInput(f"INPUT{i}", [2, 16], "INT32") for i in (0, 1)]
    for tensor in inputs:
        tensor.set_data_from_numpy(a)
    result: np.ndarray = client.infer(name, inputs, headers=admin()).as_numpy("OUTPUT0")
    np.testing.assert_array_equal(result, a + a)
    return result


def _refused(call: object, *args: object, **kwargs: object) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value


def test_load_with_config_and_files_deploys_a_model_over_grpc(
    guarded: grpcclient.InferenceServerClient, model_file: bytes
) -> None:
    config = json.dumps({"name": "deployed", **TRITON_CONFIG})
    guarded.load_model("deployed", headers=admin(), config=config, files={"file:1/model.onnx": model_file})
    assert guarded.is_model_ready("deployed", headers=admin())
    _sum(guarded, "deployed")
    served = guarded.get_model_config("deployed", headers=admin()).config
    assert served.max_batch_size == 4 and [list(t.dims) for t in served.input] == [[16], [16]]
    assert list(served.dynamic_batching.preferred_batch_size) == [2, 4]
    assert served.dynamic_batching.max_queue_delay_microseconds == 250
    # a config override alone rewrites config.yaml: a plain reload afterwards keeps it
    guarded.load_model("deployed", headers=admin(), config='{"max_batch_size": "2"}')
    guarded.load_model("deployed", headers=admin())
    assert guarded.get_model_config("deployed", headers=admin()).config.max_batch_size == 2
    _sum(guarded, "deployed")


def test_load_that_fails_keeps_the_deployed_model_serving(
    guarded: grpcclient.InferenceServerClient, model_file: bytes
) -> None:
    config = json.dumps({"name": "kept", **TRITON_CONFIG})
    guarded.load_model("kept", headers=admin(), config=config, files={"file:1/model.onnx": model_file})
    error = _refused(
        guarded.load_model, "kept", headers=admin(), config=config, files={"file:1/model.onnx": b"not onnx"}
    )
    assert error.status() == "StatusCode.INVALID_ARGUMENT"
    assert "failed to load 'kept'" in str(error.message())
    assert guarded.is_model_ready("kept", headers=admin())
    _sum(guarded, "kept")


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ({"files": {"file:1/../model.onnx": b"x"}, "config": "{}"}, "parameters.'file:1/../model.onnx'"),
        ({"files": {"file:1/model.onnx": b"x"}}, "need a config parameter"),
        ({"config": '{"max_batch_size": -1, "no_such_key": 1}'}, "no_such_key"),
        ({"config": "not json"}, "parameters.config: not valid JSON"),
    ],
)
def test_load_with_bad_parameters_is_refused_by_name(
    guarded: grpcclient.InferenceServerClient, parameters: dict[str, object], named: str
) -> None:
    error = _refused(guarded.load_model, "simple", headers=admin(), **parameters)
    assert error.status() == "StatusCode.INVALID_ARGUMENT", error
    assert "failed to load 'simple'" in str(error.message()) and named in str(error.message()), error
    assert guarded.is_model_ready("simple", headers=admin())


def test_load_with_files_needs_a_full_access_key(
    server: GrpcServer, guarded: grpcclient.InferenceServerClient, model_file: bytes
) -> None:
    files = {"file:1/model.onnx": model_file}
    config = json.dumps({"name": "intruder", **TRITON_CONFIG})
    inference = {"authorization": f"Bearer {INFERENCE_KEY}"}
    denied = _refused(guarded.load_model, "intruder", headers=inference, config=config, files=files)
    assert denied.status() == "StatusCode.PERMISSION_DENIED", denied
    keyless = grpcclient.InferenceServerClient(server.grpc_url)
    denied = _refused(keyless.load_model, "intruder", config=config, files=files)
    assert denied.status() == "StatusCode.PERMISSION_DENIED", denied
    assert "needs an API key" in str(denied.message())
    assert "intruder" not in {m.name for m in keyless.get_model_repository_index().models}
