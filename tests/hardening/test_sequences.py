"""v2 infer keeps to the sequence limits of a model's config (text.max_length, generation.context_length),
checks the inputs that must agree before ONNX Runtime sees them, and never answers NaN as a silent null."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .repository import copy_bundled, write_logarithm
from .server import Server, serving

HEADS, HEAD_DIM, LAYERS, CONTEXT = 4, 32, 4, 384
TEXT_MAX_LENGTH = 128


@pytest.fixture(scope="module")
def models_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("sequences")
    root = base / "models"
    root.mkdir()
    copy_bundled(root, "text-lstm", "tiny-gpt")
    write_logarithm(root)
    with serving(root.resolve(), base / "server.log") as srv:
        yield srv


def _int64(name: str, rows: list[list[int]]) -> dict[str, Any]:
    return {"name": name, "datatype": "INT64", "shape": [len(rows), len(rows[0])], "data": rows}


def _text(ids_length: int, mask_length: int | None = None) -> dict[str, Any]:
    return {
        "inputs": [
            _int64("input_ids", [[5] * ids_length]),
            _int64("attention_mask", [[1] * (mask_length or ids_length)]),
        ]
    }


def _decoder(sequence: int, past: int, mask: int, positions: list[int] | None = None) -> dict[str, Any]:
    inputs = [
        _int64("input_ids", [[7] * sequence]),
        _int64("position_ids", [positions or list(range(past, past + sequence))]),
        _int64("attention_mask", [[1] * mask]),
    ]
    for layer in range(LAYERS):
        for kind in ("key", "value"):
            inputs.append({"name": f"past_key_values.{layer}.{kind}", "datatype": "FP32",
                           "shape": [1, HEADS, past, HEAD_DIM], "data": [0.0] * (HEADS * past * HEAD_DIM)})  # fmt: skip
    return {"inputs": inputs, "outputs": [{"name": "logits"}]}


def _post(server: Server, model: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/models/{model}/infer", json=body, timeout=30)


@pytest.mark.parametrize("length", [TEXT_MAX_LENGTH + 1, 500_000])
def test_text_sequence_past_max_length_gets_413_naming_axis_and_limit(models_server: Server, length: int) -> None:
    response = _post(models_server, "text-lstm", _text(length))
    assert response.status_code == 413, response.text[:300]
    error = response.json()["error"]
    for word in ("input_ids", "axis 1", str(length), "text.max_length", str(TEXT_MAX_LENGTH)):
        assert word in error, (word, error)


def test_text_sequence_within_max_length_is_served(models_server: Server) -> None:
    assert _post(models_server, "text-lstm", _text(TEXT_MAX_LENGTH)).status_code == 200


def test_text_ids_and_mask_of_different_lengths_get_400_naming_both(models_server: Server) -> None:
    response = _post(models_server, "text-lstm", _text(5, 6))
    assert response.status_code == 400, response.text
    assert "input_ids" in response.json()["error"] and "attention_mask" in response.json()["error"]


@pytest.mark.parametrize("sequence", [CONTEXT + 1, 4096])
def test_decoder_sequence_past_context_length_gets_413(models_server: Server, sequence: int) -> None:
    response = _post(models_server, "tiny-gpt", _decoder(sequence, 0, sequence))
    assert response.status_code == 413, response.text[:300]
    assert "generation.context_length" in response.json()["error"] and str(CONTEXT) in response.json()["error"]


def test_decoder_mask_shorter_than_past_plus_sequence_gets_400(models_server: Server) -> None:
    """It once answered 200 with every logit null (NaN)."""
    response = _post(models_server, "tiny-gpt", _decoder(3, 2, 1))
    assert response.status_code == 400, response.text[:300]
    assert "attention_mask" in response.json()["error"] and "past" in response.json()["error"]


def test_decoder_position_past_the_context_gets_400(models_server: Server) -> None:
    response = _post(models_server, "tiny-gpt", _decoder(1, 0, 1, positions=[CONTEXT]))
    assert response.status_code == 400, response.text[:300]
    assert "position_ids" in response.json()["error"]


def test_decoder_request_within_its_rules_is_served_with_finite_logits(models_server: Server) -> None:
    response = _post(models_server, "tiny-gpt", _decoder(3, 2, 5))
    assert response.status_code == 200, response.text[:300]
    assert None not in response.json()["outputs"][0]["data"]


def test_nan_output_as_json_gets_400_naming_the_output(models_server: Server) -> None:
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [-1.0, 1.0, 2.0]}]}
    response = _post(models_server, "logarithm", body)
    assert response.status_code == 400, response.text
    assert "'y'" in response.json()["error"] and "NaN" in response.json()["error"]
    body["outputs"] = [{"name": "y", "parameters": {"binary_data": True}}]
    assert _post(models_server, "logarithm", body).status_code == 200, "binary data carries NaN as it is"
