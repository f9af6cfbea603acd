"""Checks on request content that the body limit alone cannot make: text length, and non-finite numbers.

A megabyte of text fits any body limit but costs a tokenizer pass before truncation, so it is refused
by length first (413). NaN and infinity are refused for task models (400): they were trained on finite
data and would answer with NaN scores, which JSON cannot even carry (they become `null`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.errors import InvalidInput, PayloadTooLarge

NON_FINITE_HINT = "this model takes finite numbers (NNSERVE_ALLOW_NON_FINITE=true lets them through)"


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
