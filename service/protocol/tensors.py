"""Tensor bytes and JSON values <-> numpy, per the v2 datatypes and the binary tensor data extension.

Binary layout (Triton's extension): little-endian, row-major, unpadded; BOOL is one byte; a BYTES
element is a `<I` length followed by its bytes.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.errors import InvalidInput
from service.runtime.datatypes import V2_TO_NUMPY

Array = NDArray[Any]
_LENGTH = struct.Struct("<I")


def numpy_dtype(datatype: str, where: str) -> np.dtype[Any]:
    try:
        return V2_TO_NUMPY[datatype]
    except KeyError:
        known = ", ".join(V2_TO_NUMPY)
        raise InvalidInput(f"{where}: datatype {datatype!r} is not supported (supported: {known})") from None


def element_count(shape: list[int]) -> int:
    """Python's exact integers: no overflow on absurd shapes, and a fraction of `np.prod`'s cost."""
    return math.prod(shape)


def from_binary(
    raw: bytes | memoryview, datatype: str, shape: list[int], where: str, size_name: str = "binary_data_size"
) -> Array:
    """A tensor from its binary_data_size bytes (`size_name`: what the transport calls their length)."""
    count = element_count(shape)
    if datatype == "BYTES":
        return _bytes_elements(bytes(raw), count, where).reshape(shape)
    dtype = numpy_dtype(datatype, where)
    if len(raw) != count * dtype.itemsize:
        raise InvalidInput(
            f"{where}: shape {shape} of {datatype} needs {count * dtype.itemsize} bytes, "
            f"{size_name} is {len(raw)}"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _bytes_elements(raw: bytes, count: int, where: str) -> Array:
    items: list[str] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidInput(f"{where}: BYTES data ends inside an element length at byte {offset}")
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise InvalidInput(
                f"{where}: BYTES element {len(items)} claims {length} bytes past the data's end"
            )
        items.append(_utf8(raw[offset : offset + length], f"{where}[{len(items)}]"))
        offset += length
    if len(items) != count:
        raise InvalidInput(f"{where}: shape needs {count} BYTES elements, the data holds {len(items)}")
    return np.array(items, dtype=object)


def _utf8(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{where}: BYTES element is not UTF-8 text (models here take strings)") from None


def from_json(data: Any, datatype: str, shape: list[int], where: str) -> Array:
    """A tensor from JSON `data`, flat or nested, checked against the declared shape."""
    if data is None:
        raise InvalidInput(f"{where}: no 'data' and no binary_data_size parameter")
    count = element_count(shape)
    if datatype == "BYTES":
        flat = (
            np.asarray(data, dtype=object).reshape(-1) if isinstance(data, list) else np.array([data], object)
        )
        if not all(isinstance(item, str) for item in flat):
            raise InvalidInput(f"{where}: BYTES data must be strings")
        array = flat
    else:
        dtype = numpy_dtype(datatype, where)
        try:
            loose = np.asarray(data)
        except ValueError:
            raise InvalidInput(f"{where}: data is ragged (nested lists of unequal length)") from None
        if loose.dtype.kind not in "biuf":
            raise InvalidInput(f"{where}: {datatype} data must be numbers, got {_sample(loose)}")
        if dtype.kind in "iu":
            _check_integers(loose, dtype, datatype, where)
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf is caught by check_finite
                array = loose.astype(dtype, casting="unsafe").reshape(-1)
        except (OverflowError, ValueError) as exc:
            raise InvalidInput(f"{where}: data does not fit {datatype}: {exc}") from None
    if array.size != count:
        raise InvalidInput(f"{where}: shape {shape} needs {count} values, data has {array.size}")
    return array.reshape(shape)


def _check_integers(values: Array, dtype: np.dtype[Any], datatype: str, where: str) -> None:
    """Whole numbers within the datatype's range: a cast would silently wrap or truncate them."""
    if values.size == 0 or values.dtype == dtype:  # e.g. JSON integers for an INT64 input: nothing to lose
        return
    with np.errstate(invalid="ignore"):
        if values.dtype.kind == "f" and not np.all(np.mod(values, 1) == 0):
            raise InvalidInput(f"{where}: {datatype} data must be integers, got {_sample(values)}")
    info = np.iinfo(dtype)
    if values.min() < info.min or values.max() > info.max:
        raise InvalidInput(f"{where}: {datatype} data must lie in [{info.min}, {info.max}], got {_sample(values)}")


def _sample(array: Array) -> str:
    text = repr(array.reshape(-1)[:3].tolist())
    return text if len(text) < 80 else text[:77] + "..."


def to_binary(array: Array, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for item in array.reshape(-1):
            raw = item.encode("utf-8") if isinstance(item, str) else bytes(item)
            parts += [_LENGTH.pack(len(raw)), raw]
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=V2_TO_NUMPY[datatype]).tobytes()


def to_json(array: Array, datatype: str, name: str) -> Any:
    """Flat row-major values; orjson serializes numeric numpy arrays natively (see service.responses)."""
    if datatype == "BYTES":
        out = []
        for item in array.reshape(-1):
            if isinstance(item, bytes):
                try:
                    item = item.decode("utf-8")
                except UnicodeDecodeError:
                    raise InvalidInput(
                        f"outputs {name!r}: holds bytes that are not UTF-8; request it with binary_data"
                    ) from None
            out.append(item)
        return out
    return np.ascontiguousarray(array.reshape(-1))
