"""Nested JSON numbers -> one sample of a model input (the input's shape without its batch axis)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.errors import InvalidInput


def as_sample(value: Any, sample_shape: tuple[int, ...], dtype: np.dtype[Any], where: str) -> NDArray[Any]:
    """The sample as an array of `sample_shape`; also accepted flat, or without leading 1-sized axes."""
    try:
        array = np.asarray(value)
    except ValueError:
        raise InvalidInput(f"{where}: nested lists of unequal length") from None
    if array.dtype.kind not in "biuf":
        raise InvalidInput(f"{where}: expected numbers, got {type(value).__name__} {str(value)[:60]!r}")
    want = int(np.prod(sample_shape))
    squeezed = sample_shape
    while len(squeezed) > 1 and squeezed[0] == 1:
        squeezed = squeezed[1:]
    if array.shape not in (sample_shape, squeezed, (want,)):
        raise InvalidInput(
            f"{where}: shape {list(array.shape)} does not fit the model's sample shape {list(sample_shape)} "
            f"(also accepted: {list(squeezed)} or {want} flat values)"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # a value too large becomes inf: refused by the route
        return array.astype(dtype).reshape(sample_shape)
