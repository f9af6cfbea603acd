"""The row parser alone (no server): messages stay short whatever the client sends, and edge values."""

from __future__ import annotations

import math

import pytest
from testkit.task_models import SCHEMA

from service.errors import InvalidInput
from service.tasks.tabular import RowEncoder

GOOD = {"age": 30, "colour": "red", "income": 52000, "code": "3"}


def _error(row: object) -> str:
    with pytest.raises(InvalidInput) as caught:
        RowEncoder(SCHEMA).encode([row], ["instances[0]"])
    return str(caught.value)


def test_encode_long_unknown_column_name_is_shortened_in_the_message() -> None:
    message = _error({**GOOD, "x" * 100_000: 1})
    assert message.startswith("instances[0]: unknown column(s) 'xxx")
    assert len(message) < 400


def test_encode_many_unknown_columns_are_counted_not_all_listed() -> None:
    message = _error({**GOOD, **{f"extra{i}": i for i in range(20)}})
    assert "'extra11', ... (20 in all)" in message and "extra12" not in message


def test_encode_long_bad_value_is_shortened_in_the_message() -> None:
    message = _error({**GOOD, "age": "z" * 100_000})
    assert message.startswith("instances[0].age: 'zzz") and len(message) < 300


def test_encode_integer_too_large_for_a_float_is_refused() -> None:
    assert "is not a finite FP32 number" in _error({**GOOD, "income": 10**400})


def test_encode_negative_zero_and_whitespace_numbers_parse_like_float() -> None:
    features = RowEncoder(SCHEMA).encode([{**GOOD, "age": " -0.0 ", "income": "1_000"}], ["r"])
    assert features[0, 0] == 0.0 and math.copysign(1.0, features[0, 0]) == -1.0
    assert features[0, 5] == 1000.0
