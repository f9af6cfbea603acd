"""How a served model's config becomes its batcher's padding and policy (service/runtime/batch_plan.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from service.batching import NO_PADDING
from service.runtime.batch_plan import padding_for, policy_for
from service.schema.config import ModelConfig


@dataclass
class Arg:
    """Stands in for ONNX Runtime's NodeArg: a name and a shape with symbolic dimensions."""

    name: str
    shape: list[Any]


INPUTS = [Arg("ids", ["batch", "sequence"]), Arg("mask", ["batch", "sequence"])]
OUTPUTS = [Arg("probabilities", ["batch", 2]), Arg("hidden", ["batch", "sequence", 8])]


def text_config(padding: str = "longest", **extra: Any) -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "task": "text-classification",
            "text": {"max_length": 16, "padding": padding, "pad_token_id": 3, "input_ids": "ids",
                     "attention_mask": "mask"},
            "classification": {"labels": ["ham", "spam"], "probabilities": "probabilities"},
            **extra,
        }
    )  # fmt: skip


def test_text_model_padded_to_longest_pads_ids_and_mask() -> None:
    padding = padding_for(text_config(), INPUTS, OUTPUTS)
    assert dict(padding.pad_values) == {"ids": 3, "mask": 0}
    assert padding.outputs == {"hidden"}


def test_max_length_model_and_other_tasks_are_not_padded() -> None:
    assert padding_for(text_config("max_length"), INPUTS, OUTPUTS) is NO_PADDING
    assert padding_for(ModelConfig(), INPUTS, OUTPUTS) is NO_PADDING


def test_policy_takes_server_default_deadline_unless_the_model_has_one() -> None:
    assert policy_for(text_config(), 30.0).default_timeout_s == 30.0
    assert policy_for(text_config(batching={"timeout_ms": 250}), 30.0).default_timeout_s == 0.25
    assert policy_for(text_config(), None).default_timeout_s is None


def test_exact_batch_switch_comes_from_parameters() -> None:
    assert policy_for(text_config(parameters={"exact_batch_requests": 8}), None).exact_batch_requests == 8
    assert policy_for(text_config(), None).exact_batch_requests is None


@pytest.mark.parametrize("value", [0, -2, "8", 2.5, True])
def test_bad_exact_batch_switch_names_the_field(value: Any) -> None:
    with pytest.raises(ValueError, match=r"parameters\.exact_batch_requests: expected a positive integer"):
        policy_for(text_config(parameters={"exact_batch_requests": value}), None)
