"""The service's errors over gRPC: each maps to its status code with HTTP's message; deadlines,
cancellation, API keys, a bad protobuf and an oversize message, after which the server keeps serving."""

from __future__ import annotations

import time

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from grpc_clients import digit_pixels, http_error, http_infer, pixels_input
from grpc_servers import ADMIN_KEY, INFERENCE_KEY, SMALL_MESSAGE_LIMIT, GrpcServer
from tritonclient.utils import InferenceServerException

MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"


@pytest.fixture()
def client(server: GrpcServer) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(server.grpc_url)


def simple_inputs(rows: int = 1) -> list[grpcclient.InferInput]:
    inputs = []
    for name in ("INPUT0", "INPUT1"):
        tensor = grpcclient.InferInput(name, [rows, 16], "INT32")
        tensor.set_data_from_numpy(np.arange(rows * 16, dtype=np.int32).reshape(rows, 16))
        inputs.append(tensor)
    return inputs


def refused(call: object, *args: object, **kwargs: object) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value


@pytest.mark.parametrize(
    ("model", "pixels", "code"),
    [
        ("no-such-model", digit_pixels(1), "NOT_FOUND"),
        ("digits-cnn", digit_pixels(1)[:, :, :4], "INVALID_ARGUMENT"),
    ],
    ids=["unknown-model", "wrong-shape"],
)
def test_errors_map_to_grpc_codes_with_the_http_message(
    server: GrpcServer, client: grpcclient.InferenceServerClient, model: str, pixels: np.ndarray, code: str
) -> None:
    error = refused(client.infer, model, [pixels_input(pixels)])
    assert error.status() == f"StatusCode.{code}"
    assert error.message() == http_error(http_infer(server.http.url, model, pixels))


def test_not_finite_input_is_invalid_argument_naming_the_input(client: grpcclient.InferenceServerClient) -> None:
    error = refused(client.infer, "digits-cnn", [pixels_input(np.full((1, 1, 8, 8), np.nan, np.float32))])
    assert error.status() == "StatusCode.INVALID_ARGUMENT"
    assert error.message().startswith("inputs[0] 'pixels': holds NaN or infinity")


@pytest.mark.parametrize(
    ("model", "b_columns", "says"),
    [("pair-shared", 3, "the model names both dimension 'K'"), ("pair-distinct", 3, "Add node")],
)
def test_inputs_whose_shapes_disagree_are_invalid_argument_with_the_http_message(
    server: GrpcServer, client: grpcclient.InferenceServerClient, model: str, b_columns: int, says: str
) -> None:
    """Shapes only the graph relates (issue 16 #17): checked before the run, or refused by ONNX Runtime."""
    arrays = {"a": np.ones((1, 2), np.float32), "b": np.ones((1, b_columns), np.float32)}
    inputs = []
    for name, array in arrays.items():
        tensor = grpcclient.InferInput(name, list(array.shape), "FP32")
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    error = refused(client.infer, model, inputs)
    assert error.status() == "StatusCode.INVALID_ARGUMENT" and says in error.message(), error
    tensors = [
        {"name": n, "shape": list(a.shape), "datatype": "FP32", "data": a.ravel().tolist()} for n, a in arrays.items()
    ]
    body = {"inputs": tensors}
    over_http = httpx.post(f"{server.http.url}/v2/models/{model}/infer", json=body, timeout=30)
    assert over_http.status_code == 400 and error.message() == over_http.json()["error"]


def test_unloaded_model_is_unavailable_with_retry_after(
    server: GrpcServer, client: grpcclient.InferenceServerClient
) -> None:
    client.unload_model("digits-unloaded")
    with grpc.insecure_channel(server.grpc_url) as channel:
        call = channel.unary_unary(MODEL_INFER)
        with pytest.raises(grpc.RpcError) as caught:
            call(_raw_request("digits-unloaded"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert caught.value.details() == http_error(http_infer(server.http.url, "digits-unloaded", digit_pixels(1)))
    assert ("retry-after", "1") in caught.value.trailing_metadata()


def test_full_queue_is_resource_exhausted_with_retry_after(server: GrpcServer) -> None:
    """digits-queue holds one request (it waits for a second to form its batch of 2): the next is refused.
    The held one has a 2 s deadline, which then empties the queue."""
    client = grpcclient.InferenceServerClient(server.grpc_url)
    waiting: list[InferenceServerException | None] = []
    client.async_infer(
        "digits-queue",
        [pixels_input(digit_pixels(1))],
        lambda result, error: waiting.append(error),
        timeout=2_000_000,
    )
    http = server.http
    http.wait_for("a queued request", lambda: http.metric("nnserve_queue_depth", model="digits-queue") == 1)
    with grpc.insecure_channel(server.grpc_url) as channel, pytest.raises(grpc.RpcError) as caught:
        channel.unary_unary(MODEL_INFER)(_raw_request("digits-queue"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.details().startswith("queue full (1 requests waiting); retry after")
    assert any(key == "retry-after" for key, _ in caught.value.trailing_metadata())
    http.wait_for("the held request's deadline", lambda: len(waiting) == 1, timeout_s=30)
    assert waiting[0] is not None and waiting[0].status() == "StatusCode.DEADLINE_EXCEEDED"


def test_timeout_parameter_expires_a_queued_request_as_deadline_exceeded(server: GrpcServer) -> None:
    client = grpcclient.InferenceServerClient(server.grpc_url)
    error = refused(
        client.infer, "digits-deadline", [pixels_input(digit_pixels(1))], timeout=200_000, client_timeout=30
    )
    assert error.status() == "StatusCode.DEADLINE_EXCEEDED"
    assert error.message().startswith("deadline exceeded after waiting")
    assert server.http.metric("nnserve_dropped_requests_total", model="digits-deadline", reason="deadline") == 1


def test_grpc_deadline_takes_the_request_out_of_the_queue(server: GrpcServer) -> None:
    client = grpcclient.InferenceServerClient(server.grpc_url)
    started = time.monotonic()
    error = refused(client.infer, "digits-deadline", [pixels_input(digit_pixels(1))], client_timeout=0.5)
    assert error.status() == "StatusCode.DEADLINE_EXCEEDED"
    assert time.monotonic() - started < 10
    server.http.wait_for(
        "the expired request to leave the queue",
        lambda: server.http.metric("nnserve_queue_depth", model="digits-deadline") == 0,
    )


def test_cancelled_call_leaves_the_queue_without_running(server: GrpcServer) -> None:
    """digits-cancel waits for 2 requests per batch: a cancelled one must not count towards the next batch."""
    client = grpcclient.InferenceServerClient(server.grpc_url)
    answers: list[object] = []
    call = client.async_infer(
        "digits-cancel", [pixels_input(digit_pixels(1))], lambda result, error: answers.append(error)
    )
    http = server.http
    http.wait_for("the request to be queued", lambda: http.metric("nnserve_queue_depth", model="digits-cancel") == 1)
    call.cancel()
    http.wait_for(
        "the cancelled request to leave the queue",
        lambda: http.metric("nnserve_dropped_requests_total", model="digits-cancel", reason="cancelled") == 1,
    )
    http.wait_for(
        "the cancelled call to be counted",
        lambda: http.metric("nnserve_requests_total", model="digits-cancel", code="499", protocol="grpc") == 1,
    )
    second = grpcclient.InferenceServerClient(server.grpc_url)
    results: list[object] = []
    second.async_infer("digits-cancel", [pixels_input(digit_pixels(1))], lambda result, error: results.append(error))
    second.infer("digits-cancel", [pixels_input(digit_pixels(1))])
    http.wait_for("both answers", lambda: results == [None])
    stats = http.statistics("digits-cancel")
    assert (stats["execution_count"], stats["inference_count"]) == (1, 2)


def test_bad_protobuf_is_invalid_argument_and_the_server_keeps_serving(
    server: GrpcServer, client: grpcclient.InferenceServerClient
) -> None:
    with grpc.insecure_channel(server.grpc_url) as channel, pytest.raises(grpc.RpcError) as caught:
        channel.unary_unary(MODEL_INFER)(b"\xff\xff\xff\xff not a protobuf", timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("request: not a valid inference.ModelInferRequest protobuf message")
    assert client.infer("digits-cnn", [pixels_input(digit_pixels(1))]).as_numpy("probabilities").argmax() == 0


def test_oversize_message_is_resource_exhausted_and_the_server_keeps_serving(guarded_server: GrpcServer) -> None:
    client = grpcclient.InferenceServerClient(guarded_server.grpc_url)
    rows = SMALL_MESSAGE_LIMIT // (16 * 4)  # two such inputs: twice the limit
    metadata = {"x-api-key": INFERENCE_KEY}
    error = refused(client.infer, "simple", simple_inputs(rows), headers=metadata)
    assert error.status() == "StatusCode.RESOURCE_EXHAUSTED"
    assert str(SMALL_MESSAGE_LIMIT) in error.message()
    result = client.infer("simple", simple_inputs(2), headers=metadata)
    assert result.as_numpy("OUTPUT0").tolist()[0] == list(range(0, 32, 2))


def test_api_keys_guard_grpc_as_they_guard_http(guarded_server: GrpcServer) -> None:
    client = grpcclient.InferenceServerClient(guarded_server.grpc_url)
    assert client.is_server_live() and client.is_server_ready()  # probes stay open
    missing = refused(client.infer, "simple", simple_inputs())
    assert missing.status() == "StatusCode.UNAUTHENTICATED"
    over_http = guarded_server.http.client().post("/v2/models/simple/infer", json={"inputs": []})
    assert missing.message() == http_error(over_http)
    wrong = refused(client.infer, "simple", simple_inputs(), headers={"authorization": "Bearer wrong"})
    assert wrong.status() == "StatusCode.UNAUTHENTICATED"
    assert "invalid API key" in wrong.message()
    inference = {"authorization": f"Bearer {INFERENCE_KEY}"}
    assert client.infer("simple", simple_inputs(), headers=inference).as_numpy("OUTPUT1").sum() == 0
    denied = refused(client.unload_model, "simple", headers=inference)
    assert denied.status() == "StatusCode.PERMISSION_DENIED"
    assert denied.message() == "Authorization: this API key may run models but not change the repository"
    client.load_model("simple", headers={"x-api-key": ADMIN_KEY})
    assert client.is_model_ready("simple", headers=inference)


def _raw_request(model: str) -> bytes:
    from tritonclient.grpc import service_pb2

    pixels = digit_pixels(1)
    request = service_pb2.ModelInferRequest(model_name=model)
    request.inputs.add(name="pixels", datatype="FP32", shape=pixels.shape)
    request.raw_input_contents.append(pixels.tobytes())
    return request.SerializeToString()
