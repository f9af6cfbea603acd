"""Joining requests into a batch and splitting answers back, on plain numpy arrays."""

from __future__ import annotations

import numpy as np
import pytest

from service.batching import BatchOutputError, BatchPolicy, InvalidInputError, SequencePadding
from service.batching.padding import assemble, sequence_length, signature, split
from service.schema.config import BatchingSettings

PADDING = SequencePadding({"input_ids": 9, "attention_mask": 0}, outputs=frozenset({"per_token"}))


def request(length: int, samples: int = 1) -> dict[str, np.ndarray]:
    return {
        "input_ids": np.arange(1, length + 1, dtype=np.int64)[None].repeat(samples, axis=0),
        "attention_mask": np.ones((samples, length), dtype=np.int64),
    }


def test_assemble_right_pads_each_input_with_its_pad_value() -> None:
    batch = assemble([request(2), request(4, samples=2)], [2, 4], PADDING)
    assert batch["input_ids"].tolist() == [[1, 2, 9, 9], [1, 2, 3, 4], [1, 2, 3, 4]]
    assert batch["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]]


def test_split_slices_sequence_outputs_back_to_each_length() -> None:
    outputs = {"per_token": np.arange(12.0).reshape(3, 4), "pooled": np.arange(3.0)[:, None]}
    first, second = split(outputs, [1, 2], [2, 4], PADDING)
    assert first["per_token"].tolist() == [[0.0, 1.0]]
    assert second["per_token"].shape == (2, 4)
    assert [first["pooled"].shape, second["pooled"].shape] == [(1, 1), (2, 1)]


def test_left_padding_pads_in_front_and_slices_the_tail() -> None:
    left = SequencePadding(PADDING.pad_values, outputs=PADDING.outputs, side="left")
    batch = assemble([request(2), request(3)], [2, 3], left)
    assert batch["input_ids"].tolist() == [[9, 1, 2], [1, 2, 3]]
    assert batch["attention_mask"].tolist() == [[0, 1, 1], [1, 1, 1]]
    first, _ = split({"per_token": np.arange(6).reshape(2, 3)}, [1, 1], [2, 3], left)
    assert first["per_token"].tolist() == [[1, 2]]


def test_split_rejects_wrong_batch_dimension() -> None:
    with pytest.raises(BatchOutputError, match="output 'pooled' has batch size 2, but the batch held 3"):
        split({"pooled": np.zeros((2, 1))}, [1, 2], [None, None], PADDING)


def test_split_rejects_sequence_output_without_padded_length() -> None:
    with pytest.raises(BatchOutputError, match="padded sequence length 4"):
        split({"per_token": np.zeros((3, 3))}, [1, 2], [2, 4], PADDING)


def test_sequence_length_rejects_pad_value_the_dtype_cannot_hold() -> None:
    padding = SequencePadding({"input_ids": -1})
    with pytest.raises(InvalidInputError, match="cannot hold the pad value -1"):
        sequence_length({"input_ids": np.ones((1, 3), np.uint8)}, padding)


def test_signature_ignores_batch_and_sequence_lengths_within_a_band() -> None:
    assert signature(request(5), PADDING, 5) == signature(request(8, samples=3), PADDING, 8)
    assert signature(request(8), PADDING, 8) != signature(request(9), PADDING, 9)
    no_bands = SequencePadding(PADDING.pad_values, bucketing=False)
    assert signature(request(2), no_bands, 2) == signature(request(90), no_bands, 90)
    image = {"pixels": np.zeros((1, 8, 8), np.float32)}
    assert signature(image, PADDING, None) != signature(
        {"pixels": np.zeros((1, 8, 9), np.float32)}, PADDING, None
    )


def test_from_graph_finds_outputs_sharing_the_symbolic_sequence_axis() -> None:
    padding = SequencePadding.from_graph(
        {"input_ids": 0},
        {"input_ids": ["batch", "seq"]},
        {"logits": ["batch", 2], "hidden": ["batch", "seq", 16], "other": ["batch", "n"]},
    )
    assert padding.outputs == {"hidden"}


def test_policy_from_settings_converts_milliseconds() -> None:
    settings = BatchingSettings(max_batch_size=8, max_queue_delay_ms=5, preferred_batch_sizes=[4, 2, 4])
    policy = BatchPolicy.from_settings(settings, default_timeout_s=30.0)
    assert (policy.max_queue_delay_s, policy.preferred_batch_sizes, policy.default_timeout_s) == (
        0.005, (2, 4), 30.0,
    )  # fmt: skip
    assert BatchPolicy.from_settings(BatchingSettings(timeout_ms=250)).default_timeout_s == 0.25
