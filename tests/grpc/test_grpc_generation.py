"""Generation over gRPC as Triton streams decoupled models: ModelStreamInfer sends one response per
piece of text, the last marked `triton_final_response`; the text equals HTTP's `/generate` answer."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from grpc_clients import digit_pixels, pixels_input
from grpc_servers import GrpcServer
from tritonclient.utils import InferenceServerException

PROMPT = "ROMEO:\n"
Answer = tuple[grpcclient.InferResult | None, InferenceServerException | None]


def text_inputs(prompt: str = PROMPT, max_tokens: int = 12) -> list[grpcclient.InferInput]:
    text = grpcclient.InferInput("text_input", [1], "BYTES")
    text.set_data_from_numpy(np.array([prompt.encode()], dtype=object))
    tokens = grpcclient.InferInput("max_tokens", [1], "INT32")
    tokens.set_data_from_numpy(np.array([max_tokens], np.int32))
    return [text, tokens]


@pytest.fixture()
def stream(server: GrpcServer) -> Iterator[tuple[grpcclient.InferenceServerClient, queue.Queue[Answer]]]:
    client = grpcclient.InferenceServerClient(server.grpc_url)
    answers: queue.Queue[Answer] = queue.Queue()
    client.start_stream(callback=lambda result, error: answers.put((result, error)))
    yield client, answers
    client.stop_stream()


def until_final(answers: queue.Queue[Answer]) -> list[grpcclient.InferResult]:
    results = []
    while True:
        result, error = answers.get(timeout=60)
        assert error is None, error
        assert result is not None
        results.append(result)
        if result.get_response().parameters["triton_final_response"].bool_param:
            return results


def text_of(result: grpcclient.InferResult) -> str | None:
    output = result.as_numpy("text_output")
    return None if output is None else output[0].decode()


def http_generate(server: GrpcServer, **fields: Any) -> dict[str, Any]:
    response = httpx.post(f"{server.http.url}/v2/models/tiny-gpt/generate", json=fields, timeout=60)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def test_stream_infer_streams_pieces_then_a_final_response(server: GrpcServer, stream: Any) -> None:
    client, answers = stream
    client.async_stream_infer("tiny-gpt", text_inputs(), request_id="g1", parameters={"temperature": 0.0})
    results = until_final(answers)
    pieces = [text_of(r) for r in results]
    assert len(pieces) >= 3, "the text arrives in pieces"
    assert all(piece for piece in pieces[:-1]) and pieces[-1] == ""
    assert [r.get_response().parameters["triton_final_response"].bool_param for r in results[:-1]] == [False] * (
        len(results) - 1
    )
    last = results[-1].get_response()
    assert last.id == "g1"
    assert last.parameters["finish_reason"].string_param == "length"
    assert last.parameters["completion_tokens"].int64_param == 12
    over_http = http_generate(server, text_input=PROMPT, max_tokens=12, temperature=0)
    assert "".join(p for p in pieces if p) == over_http["text_output"]


def test_stream_infer_sends_an_empty_final_response_when_asked(stream: Any) -> None:
    client, answers = stream
    client.async_stream_infer(
        "tiny-gpt", text_inputs(max_tokens=4), enable_empty_final_response=True, parameters={"temperature": 0.0}
    )
    results = until_final(answers)
    assert text_of(results[-1]) is None, "the final response carries no output"
    assert all(text_of(r) for r in results[:-1])


def test_stream_input_false_answers_the_whole_text_at_once(server: GrpcServer, stream: Any) -> None:
    client, answers = stream
    flag = grpcclient.InferInput("stream", [1], "BOOL")
    flag.set_data_from_numpy(np.array([False]))
    client.async_stream_infer("tiny-gpt", [*text_inputs(max_tokens=8), flag], parameters={"temperature": 0.0})
    (result,) = until_final(answers)
    assert text_of(result) == http_generate(server, text_input=PROMPT, max_tokens=8, temperature=0)["text_output"]


def test_stream_serves_plain_models_and_reports_errors_without_closing(stream: Any) -> None:
    client, answers = stream
    client.async_stream_infer("digits-cnn", [pixels_input(digit_pixels(1))], request_id="plain")
    result, error = answers.get(timeout=30)
    assert error is None and result is not None
    assert result.as_numpy("probabilities").argmax() == 0
    client.async_stream_infer("tiny-gpt", text_inputs(), parameters={"temperature": -1.0})
    result, error = answers.get(timeout=30)
    assert result is None and error is not None
    assert "temperature" in error.message()
    client.async_stream_infer("no-such-model", [pixels_input(digit_pixels(1))])
    _, error = answers.get(timeout=30)
    assert error is not None and "no-such-model" in error.message()
    client.async_stream_infer("digits-cnn", [pixels_input(digit_pixels(2)[1:])])
    result, error = answers.get(timeout=30)
    assert error is None and result is not None and result.as_numpy("probabilities").argmax() == 1


def test_model_infer_on_a_generation_model_answers_the_whole_text(server: GrpcServer) -> None:
    client = grpcclient.InferenceServerClient(server.grpc_url)
    result = client.infer("tiny-gpt", text_inputs(max_tokens=6), parameters={"temperature": 0.0})
    assert text_of(result) == http_generate(server, text_input=PROMPT, max_tokens=6, temperature=0)["text_output"]
    assert result.get_response().parameters["triton_final_response"].bool_param
