"""Checks on request content that the body limit alone cannot make: text length, and non-finite numbers.

A megabyte of text fits any body limit but costs a tokenizer pass before truncation, so it is refused
by length first (413). NaN and infinity are refused for task models (400): they were trained on finite
data and would answer with NaN scores, which JSON cannot even carry (they become `null`).
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.errors import InvalidInput, PayloadTooLarge

NON_FINITE_HINT = "this model takes finite numbers (NNSERVE_ALLOW_NON_FINITE=true lets them through)"


def ascii_integer(raw: str, max_digits: int) -> int | None:
    """`raw` as an integer when it is 1 to `max_digits` ASCII digits, else None.

    Python's `int()` and `str.isdigit()` are too lenient for wire values: `int("25_8")` is 258, `int(" 7 ")`
    is 7, `int("\u0661")` (an Arabic-Indic one) is 1, `"\u00b2".isdigit()` holds but `int("\u00b2")` raises,
    and past 4,300 digits `int()` raises too. Each of those became a wrong answer or a 500.
    """
    if not 0 < len(raw) <= max_digits or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)


_VALUES = reprlib.Repr()
_VALUES.maxlevel, _VALUES.maxstring, _VALUES.maxother = 4, 50, 50


def shown(value: object, limit: int = 40) -> str:
    """`repr` of a client's value for an error message: nesting and length bounded, cut to `limit` characters.

    JSON may nest 1,023 levels (orjson's limit), past the recursion limit of a plain `repr`.
    """
    text = _VALUES.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_text_length(text: object, where: str, limit: int) -> None:
    """413 for a string over `limit` characters (other values are checked by their own parsers)."""
    if isinstance(text, str) and len(text) > limit:
        raise PayloadTooLarge(f"{where}: {len(text)} characters, more than max_text_chars ({limit})")


def first_non_finite_row(array: NDArray[Any]) -> int | None:
    """Index along axis 0 of the first sample holding NaN or infinity; None when all are finite."""
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return None
    finite = np.isfinite(array.reshape(len(array), -1)).all(axis=1) if array.ndim else np.isfinite(array)
    if bool(np.all(finite)):
        return None
    return int(np.flatnonzero(~np.asarray(finite).reshape(-1))[0])


def check_finite(arrays: Mapping[str, NDArray[Any]], where: Sequence[str] | Mapping[str, str]) -> None:
    """400 naming the first sample (a sequence of names per row) or input (a mapping) holding NaN/inf."""
    for name, array in arrays.items():
        row = first_non_finite_row(array)
        if row is None:
            continue
        label = where[name] if isinstance(where, Mapping) else where[row]
        raise InvalidInput(
            f"{label}: holds NaN or infinity (or a value too large for {array.dtype}); {NON_FINITE_HINT}"
        )
