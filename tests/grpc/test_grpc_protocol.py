"""The unmodified tritonclient.grpc against a real server: health, metadata, config, inference (sync,
async, asyncio, typed contents), statistics and the repository RPCs answer as the HTTP side does."""

from __future__ import annotations

import asyncio
import queue

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as aioclient
from grpc_clients import digit_pixels, http_infer, pixels_input
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from grpc_servers import GrpcServer
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException


@pytest.fixture()
def client(server: GrpcServer) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(server.grpc_url)


def test_server_health_rpcs_report_live_and_ready(client: grpcclient.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("digits-cnn")
    assert client.is_model_ready("digits-cnn", model_version="1")


def test_standard_health_service_answers_probes(server: GrpcServer) -> None:
    with grpc.insecure_channel(server.grpc_url) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "readiness", "liveness", "inference.GRPCInferenceService"):
            status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.SERVING, service
        with pytest.raises(grpc.RpcError) as caught:
            health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        first = next(health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=5))
        assert first.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_inference_and_health_services(server: GrpcServer) -> None:
    with grpc.insecure_channel(server.grpc_url) as channel:
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"inference.GRPCInferenceService", "grpc.health.v1.Health"} <= services


def test_server_metadata_matches_http(server: GrpcServer, client: grpcclient.InferenceServerClient) -> None:
    metadata = client.get_server_metadata(as_json=True)
    over_http = httpx.get(f"{server.http.url}/v2", timeout=10).json()
    assert metadata["name"] == "nnserve"
    assert (metadata["version"], metadata["extensions"]) == (over_http["version"], over_http["extensions"])


def test_model_metadata_matches_http(server: GrpcServer, client: grpcclient.InferenceServerClient) -> None:
    metadata = client.get_model_metadata("digits-cnn", as_json=True)
    over_http = httpx.get(f"{server.http.url}/v2/models/digits-cnn", timeout=10).json()
    for key in ("name", "versions", "platform"):
        assert metadata[key] == over_http[key]
    assert [(t["name"], t["datatype"], [int(d) for d in t["shape"]]) for t in metadata["inputs"]] == [
        (t["name"], t["datatype"], t["shape"]) for t in over_http["inputs"]
    ]


def test_model_config_matches_http_view(server: GrpcServer, client: grpcclient.InferenceServerClient) -> None:
    config = client.get_model_config("digits-cnn").config
    over_http = httpx.get(f"{server.http.url}/v2/models/digits-cnn/config", timeout=10).json()
    assert (config.name, config.platform, config.max_batch_size) == (
        over_http["name"], over_http["platform"], over_http["max_batch_size"]
    )  # fmt: skip
    assert [(i.name, list(i.dims)) for i in config.input] == [(i["name"], i["dims"]) for i in over_http["input"]]
    assert config.input[0].data_type == service_pb2.model__config__pb2.TYPE_FP32
    assert '"task":"image-classification"' in config.parameters["nnserve"].string_value


def test_infer_returns_the_http_answer(server: GrpcServer, client: grpcclient.InferenceServerClient) -> None:
    pixels = digit_pixels(3)
    result = client.infer("digits-cnn", [pixels_input(pixels)], request_id="digits-3")
    over_http = http_infer(server.http.url, "digits-cnn", pixels).json()["outputs"][0]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (3, 10)
    np.testing.assert_array_equal(probabilities.ravel(), np.array(over_http["data"], np.float32))
    assert result.get_response().id == "digits-3"
    assert probabilities.argmax(axis=1).tolist() == [0, 1, 2]


def test_infer_classification_returns_labelled_top_classes(client: grpcclient.InferenceServerClient) -> None:
    wanted = grpcclient.InferRequestedOutput("probabilities", class_count=2)
    result = client.infer("digits-cnn", [pixels_input(digit_pixels(2))], outputs=[wanted])
    top = result.as_numpy("probabilities")
    assert top.shape == (2, 2)
    assert [row[0].decode().split(":")[1:] for row in top] == [["0", "0"], ["1", "1"]]


def test_async_infer_answers_through_the_callback(client: grpcclient.InferenceServerClient) -> None:
    answers: queue.Queue[tuple[object, object]] = queue.Queue()
    client.async_infer(
        "digits-cnn", [pixels_input(digit_pixels(1))], lambda result, error: answers.put((result, error))
    )
    result, error = answers.get(timeout=30)
    assert error is None
    assert isinstance(result, grpcclient.InferResult)
    assert result.as_numpy("probabilities").argmax() == 0


def test_asyncio_client_infers_concurrently(server: GrpcServer) -> None:
    async def run() -> list[int]:
        async with aioclient.InferenceServerClient(server.grpc_url) as client:
            pixels = digit_pixels(5)
            results = await asyncio.gather(
                *(client.infer("digits-cnn", [pixels_input(pixels[i : i + 1])]) for i in range(5))
            )
            return [int(r.as_numpy("probabilities").argmax()) for r in results]

    assert asyncio.run(run()) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests_are_served(client: grpcclient.InferenceServerClient, algorithm: str) -> None:
    result = client.infer("digits-cnn", [pixels_input(digit_pixels(2))], compression_algorithm=algorithm)
    assert result.as_numpy("probabilities").argmax(axis=1).tolist() == [0, 1]


def test_typed_contents_infer_like_raw_contents(server: GrpcServer, client: grpcclient.InferenceServerClient) -> None:
    pixels = digit_pixels(2)
    request = service_pb2.ModelInferRequest(model_name="digits-cnn")
    tensor = request.inputs.add(name="pixels", datatype="FP32", shape=pixels.shape)
    tensor.contents.fp32_contents.extend(pixels.ravel().tolist())
    with grpc.insecure_channel(server.grpc_url) as channel:
        response = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    typed = np.frombuffer(response.raw_output_contents[0], np.float32).reshape(list(response.outputs[0].shape))
    raw = client.infer("digits-cnn", [pixels_input(pixels)]).as_numpy("probabilities")
    np.testing.assert_array_equal(typed, raw)


def test_statistics_count_grpc_inferences(client: grpcclient.InferenceServerClient) -> None:
    before = client.get_inference_statistics("text-transformer").model_stats[0].inference_count
    ids = grpcclient.InferInput("input_ids", [1, 4], "INT64")
    ids.set_data_from_numpy(np.array([[5, 6, 7, 8]], np.int64))
    mask = grpcclient.InferInput("attention_mask", [1, 4], "INT64")
    mask.set_data_from_numpy(np.ones((1, 4), np.int64))
    client.infer("text-transformer", [ids, mask])
    stats = client.get_inference_statistics("text-transformer", as_json=True)["model_stats"][0]
    assert (stats["name"], stats["version"]) == ("text-transformer", "1")
    assert int(stats["inference_count"]) == before + 1
    assert stats["batch_stats"], "executed batch sizes are listed"
    every = client.get_inference_statistics().model_stats
    assert {"digits-cnn", "text-transformer", "tiny-gpt", "simple"} <= {s.name for s in every}


def test_repository_index_load_and_unload_round_trip(client: grpcclient.InferenceServerClient) -> None:
    index = {(m.name, m.version): m.state for m in client.get_model_repository_index().models}
    assert index[("digits-reload", "1")] == "READY"
    client.unload_model("digits-reload")
    assert not client.is_model_ready("digits-reload")
    states = {m.name: (m.state, m.reason) for m in client.get_model_repository_index().models}
    assert states["digits-reload"] == ("UNAVAILABLE", "unloaded")
    client.load_model("digits-reload")
    assert client.is_model_ready("digits-reload")
    with pytest.raises(InferenceServerException) as caught:
        client.load_model("no-such-model")
    assert caught.value.status() == "StatusCode.NOT_FOUND"


def test_requests_are_counted_with_the_grpc_protocol_label(
    server: GrpcServer, client: grpcclient.InferenceServerClient
) -> None:
    grpc_labels = {"model": "digits-cnn", "endpoint": "ModelInfer", "code": "200", "protocol": "grpc"}
    http_labels = {"model": "digits-cnn", "endpoint": "infer", "code": "200", "protocol": "http"}
    before = [server.http.metric("nnserve_requests_total", **labels) for labels in (grpc_labels, http_labels)]
    client.infer("digits-cnn", [pixels_input(digit_pixels(1))])
    assert server.http.metric("nnserve_requests_total", **grpc_labels) == before[0] + 1
    assert server.http.metric("nnserve_requests_total", **http_labels) == before[1]
