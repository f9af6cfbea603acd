"""Datatype names in one place: Open Inference Protocol v2 <-> numpy <-> ONNX Runtime type strings."""

from __future__ import annotations

import numpy as np

from service.schema.config import Datatype

ORT_TO_V2: dict[str, Datatype] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(bfloat16)": "BF16",
    "tensor(string)": "BYTES",
}

V2_TO_NUMPY: dict[str, np.dtype[np.generic]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(np.object_),
}
"""Little-endian, as the binary tensor extension lays them out. BF16 has no numpy dtype: not servable."""


def v2_from_ort(ort_type: str) -> Datatype:
    """v2 name of an ONNX Runtime type string; non-tensor types (sequences, maps) are not servable."""
    try:
        return ORT_TO_V2[ort_type]
    except KeyError:
        raise ValueError(f"type {ort_type} is not a plain tensor type this server can serve") from None


def v2_from_numpy(dtype: np.dtype[np.generic]) -> str:
    """v2 name of an output array's dtype (ONNX Runtime returns string tensors as object arrays)."""
    if dtype.kind in "OSU":
        return "BYTES"
    for name, candidate in V2_TO_NUMPY.items():
        if candidate == dtype.newbyteorder("<"):
            return name
    raise ValueError(f"numpy dtype {dtype} has no v2 datatype")
