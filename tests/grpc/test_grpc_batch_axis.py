"""Drop-in models without a batch axis (a scalar input, a fixed first dimension, a scalar output) are
described as Triton describes them, `max_batch_size` 0 with exact dims, identically over HTTP and gRPC,
and served over gRPC with their exact shapes; a batching model reports its `dynamic_batching`."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from grpc_servers import GrpcServer
from tritonclient.grpc import model_config_pb2

EXACT_DIMS = {
    "scalar-double": ([[]], [[]]),
    "fixed-one": ([[1, 3]], [[1, 3]]),
    "total": ([[-1, 3]], [[]]),
}
"""Input and output dims of each model without a batch axis: its full shapes, as no axis is left out."""


@pytest.fixture()
def client(server: GrpcServer) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(server.grpc_url)


@pytest.mark.parametrize("name", sorted(EXACT_DIMS))
def test_config_of_a_model_without_batch_axis_has_exact_dims_on_both_transports(
    server: GrpcServer, client: grpcclient.InferenceServerClient, name: str
) -> None:
    inputs, outputs = EXACT_DIMS[name]
    over_http = httpx.get(f"{server.http.url}/v2/models/{name}/config", timeout=10).json()
    assert over_http["max_batch_size"] == 0 and "dynamic_batching" not in over_http, over_http
    assert ([t["dims"] for t in over_http["input"]], [t["dims"] for t in over_http["output"]]) == (inputs, outputs)
    config = client.get_model_config(name).config
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching"), config
    assert ([list(t.dims) for t in config.input], [list(t.dims) for t in config.output]) == (inputs, outputs)


def test_infer_on_a_scalar_model_answers_a_scalar_and_counts_one_inference(
    client: grpcclient.InferenceServerClient,
) -> None:
    before = client.get_inference_statistics("scalar-double").model_stats[0].inference_count
    x = grpcclient.InferInput("x", [], "FP32")
    x.set_data_from_numpy(np.array(1.5, dtype=np.float32))
    result = client.infer("scalar-double", [x])
    y = result.as_numpy("y")
    assert y.shape == () and float(y) == 3.0, y
    stats = client.get_inference_statistics("scalar-double").model_stats[0]
    assert stats.inference_count == before + 1 and stats.execution_count >= 1


def _rendered(config: model_config_pb2.ModelConfig) -> dict[str, Any]:
    """The gRPC ModelConfig's Triton fields in the HTTP view's JSON form."""

    def tensors(items: Any) -> list[dict[str, Any]]:
        return [
            {"name": t.name, "data_type": model_config_pb2.DataType.Name(t.data_type), "dims": list(t.dims)}
            for t in items
        ]

    rendered = {
        "name": config.name,
        "platform": config.platform,
        "backend": config.backend,
        "max_batch_size": config.max_batch_size,
        "input": tensors(config.input),
        "output": tensors(config.output),
    }
    if config.HasField("dynamic_batching"):
        batching = config.dynamic_batching
        rendered["dynamic_batching"] = {
            "preferred_batch_size": list(batching.preferred_batch_size),
            "max_queue_delay_microseconds": batching.max_queue_delay_microseconds,
        }
    return rendered


@pytest.mark.parametrize("name", ["strings", "digits-cnn", "scalar-double", "fixed-one"])
def test_grpc_model_config_renders_the_http_view(
    server: GrpcServer, client: grpcclient.InferenceServerClient, name: str
) -> None:
    over_http = httpx.get(f"{server.http.url}/v2/models/{name}/config", timeout=10).json()
    del over_http["nnserve"]
    assert _rendered(client.get_model_config(name).config) == over_http


def test_grpc_model_config_of_a_batching_model_has_dynamic_batching_and_type_string(
    client: grpcclient.InferenceServerClient,
) -> None:
    config = client.get_model_config("strings").config
    assert config.max_batch_size == 4
    assert list(config.dynamic_batching.preferred_batch_size) == [2, 4]
    assert config.dynamic_batching.max_queue_delay_microseconds == 250
    assert [(t.name, t.data_type, list(t.dims)) for t in config.input] == [("text", model_config_pb2.TYPE_STRING, [])]


def test_grpc_model_config_of_a_non_batching_model_has_no_dynamic_batching(
    client: grpcclient.InferenceServerClient,
) -> None:
    config = client.get_model_config("fixed-one").config
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert [(t.data_type, list(t.dims)) for t in config.input] == [(model_config_pb2.TYPE_FP32, [1, 3])]
