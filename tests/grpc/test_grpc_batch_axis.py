"""Drop-in models without a batch axis (a scalar input, a fixed first dimension, a scalar output) are
described as Triton describes them, `max_batch_size` 0 with exact dims, identically over HTTP and gRPC,
and served over gRPC with their exact shapes; a batching model reports its `dynamic_batching`."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from grpc_servers import GrpcServer

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
