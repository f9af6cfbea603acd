"""v2 inference requests and responses, with the binary tensor data and classification extensions.

A request body is JSON, optionally followed by raw tensor bytes; the `Inference-Header-Content-Length`
header then gives the JSON's length (tritonclient never sends a Content-Type, so framing never depends
on it). Inputs are checked against the model's signature here, so the runtime sees only well-formed
arrays and a client sees which input, field and value is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from pydantic import ValidationError

from service.errors import InvalidInput, PayloadTooLarge
from service.protocol.limits import ascii_integer, check_finite, shown
from service.protocol.schemas import InferRequest
from service.protocol.tensors import Array, from_binary, from_json, to_binary, to_json
from service.repository.graph import SharedDim
from service.runtime.datatypes import v2_from_numpy
from service.schema.config import TensorSpec


@dataclass(frozen=True)
class OutputChoice:
    name: str
    binary: bool
    classification: int = 0


@dataclass(frozen=True)
class DecodedRequest:
    id: str | None
    inputs: dict[str, Array]
    outputs: list[OutputChoice]


FRAMING_DIGITS = 19
"""Inference-Header-Content-Length: a byte count, so up to a signed 64-bit integer's digits."""
NOT_AN_OBJECT = frozenset({"model_type", "model_attributes_type", "dict_type"})


def describe_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """`inputs.0.shape: Input should be a valid list (got 'x')`: the field path and the bad value."""
    parts = []
    for err in exc.errors()[:5]:
        if not err["loc"] and not prefix and err["type"] in NOT_AN_OBJECT:
            return f"request body: expected a JSON object, got {_json_type(err.get('input'))}"
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        value = shown(err.get("input"), 60)
        parts.append(f"{loc or '<body>'}: {err['msg']} (got {value})")
    return "; ".join(parts)


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """(JSON part, binary part) of a request body framed by Inference-Header-Content-Length."""
    if header_length is None:
        return body, memoryview(b"")
    length = ascii_integer(header_length, FRAMING_DIGITS)
    if length is None:
        raise InvalidInput(f"Inference-Header-Content-Length: not a byte count in ASCII digits: {shown(header_length)}")
    if not 0 < length <= len(body):
        raise InvalidInput(
            f"Inference-Header-Content-Length: {length} is outside the body's 1..{len(body)} bytes"
        )
    return body[:length], memoryview(body)[length:]


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise InvalidInput("request body is empty; expected a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from None


def decode_request(
    body: bytes,
    header_length: str | None,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    *,
    finite: bool = False,
    shared: Sequence[SharedDim] = (),
) -> DecodedRequest:
    """Numpy arrays for every model input, and the outputs to return, from one request body.

    `finite`: refuse NaN and infinity in floating-point inputs (the policy for task models); `shared`: the
    model's symbolic dimensions named by several input axes (`ServedModel.shared_dims`).
    """
    head, binary = split_body(body, header_length)
    try:
        request = InferRequest.model_validate(parse_json(head))
    except ValidationError as exc:
        raise InvalidInput(describe_validation_error(exc)) from None
    specs = {spec.name: spec for spec in inputs}
    arrays: dict[str, Array] = {}
    labels: dict[str, str] = {}
    offset = 0
    for i, tensor in enumerate(request.inputs):
        where = check_input(i, tensor.name, tensor.datatype, tensor.shape, specs, labels)
        size = tensor.parameters.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise InvalidInput(
                    f"{where}: parameters.binary_data_size must be a non-negative integer, got {size!r}"
                )
            if offset + size > len(binary):
                raise InvalidInput(
                    f"{where}: binary_data_size {size} runs past the {len(binary)} bytes after the JSON "
                    "(is Inference-Header-Content-Length right?)"
                )
            arrays[tensor.name] = from_binary(
                binary[offset : offset + size], tensor.datatype, tensor.shape, where
            )
            offset += size
        else:
            arrays[tensor.name] = from_json(tensor.data, tensor.datatype, tensor.shape, where)
    if offset != len(binary):
        raise InvalidInput(
            f"body: {len(binary) - offset} bytes of binary data after the JSON belong to no input"
        )
    finish_inputs(arrays, specs, labels, finite=finite, shared=shared)
    requested = None if request.outputs is None else [(o.name, o.parameters) for o in request.outputs]
    default_binary = _flag(request.parameters, "binary_data_output", "parameters")
    return DecodedRequest(id=request.id, inputs=arrays, outputs=choose_outputs(requested, outputs, default_binary))


def check_input(
    index: int, name: str, datatype: str, shape: Sequence[int], specs: Mapping[str, TensorSpec], labels: dict[str, str]
) -> str:
    """The request's input `index`, checked against the model's signature (any transport); returns its
    label for messages (`inputs[0] 'pixels'`), also recorded in `labels` by name."""
    where = f"inputs[{index}] {name!r}"
    spec = specs.get(name)
    if spec is None:
        raise InvalidInput(f"{where}: the model has no such input; its inputs are {sorted(specs)}")
    if name in labels:
        raise InvalidInput(f"{where}: given twice")
    labels[name] = where
    _check_signature(datatype, shape, spec, where)
    return where


def finish_inputs(
    arrays: Mapping[str, Array],
    specs: Mapping[str, TensorSpec],
    labels: Mapping[str, str],
    *,
    finite: bool,
    shared: Sequence[SharedDim] = (),
) -> None:
    """Every model input given, axes that share a symbolic dimension of one size, and (`finite`) no NaN or
    infinity in them (any transport)."""
    missing = sorted(set(specs) - set(arrays))
    if missing:
        raise InvalidInput(f"inputs: missing {missing}; the model needs {sorted(specs)}")
    if shared:
        check_shared_dims(arrays, shared, labels)
    if finite:
        check_finite(arrays, labels)


def check_shared_dims(arrays: Mapping[str, Array], shared: Sequence[SharedDim], labels: Mapping[str, str]) -> None:
    """Axes whose graph dimension has one name must have one size (ONNX's meaning of the name): otherwise
    ONNX Runtime fails somewhere inside the graph. A loop over a few axes, for models that have any."""
    for dim in shared:
        (first, first_axis), *others = dim.axes
        size = arrays[first].shape[first_axis]
        for name, axis in others:
            other = arrays[name].shape[axis]
            if other != size:
                raise InvalidInput(
                    f"{labels[name]} axis {axis} has size {other} but {labels[first]} axis {first_axis} has "
                    f"size {size}; the model names both dimension {dim.symbol!r}, so they must be equal"
                )


def _check_signature(datatype: str, shape: Sequence[int], spec: TensorSpec, where: str) -> None:
    if datatype != spec.datatype:
        raise InvalidInput(f"{where}: datatype {datatype} does not match the model's {spec.datatype}")
    if any(d < 0 for d in shape):
        raise InvalidInput(f"{where}: shape {list(shape)} has a negative dimension")
    if len(shape) != len(spec.shape) or any(
        want not in (-1, got) for want, got in zip(spec.shape, shape, strict=True)
    ):
        raise InvalidInput(
            f"{where}: shape {list(shape)} does not match the model's {spec.shape} (-1 = any)"
        )


def choose_outputs(
    requested: Sequence[tuple[str, Mapping[str, Any]]] | None, outputs: Sequence[TensorSpec], default_binary: bool
) -> list[OutputChoice]:
    """The outputs to return: (name, parameters) of each one asked for, or None for all (any transport)."""
    if requested is None:
        return [OutputChoice(spec.name, default_binary) for spec in outputs]
    known = {spec.name for spec in outputs}
    choices: list[OutputChoice] = []
    for i, (name, parameters) in enumerate(requested):
        where = f"outputs[{i}] {name!r}"
        if name not in known:
            raise InvalidInput(f"{where}: the model has no such output; its outputs are {sorted(known)}")
        if any(choice.name == name for choice in choices):  # each copy would be encoded again
            raise InvalidInput(f"{where}: requested twice")
        if "shared_memory_region" in parameters:
            raise InvalidInput(f"{where}: shared memory is not supported by this server")
        binary = _flag(parameters, "binary_data", where) if "binary_data" in parameters else default_binary
        count = parameters.get("classification", 0)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise InvalidInput(
                f"{where}: parameters.classification must be a non-negative integer, got {count!r}"
            )
        choices.append(OutputChoice(name, binary, count))
    return choices


def _flag(parameters: Mapping[str, Any], key: str, where: str) -> bool:
    value = parameters.get(key, False)
    if not isinstance(value, bool):
        raise InvalidInput(f"{where}.{key}: must be true or false, got {value!r}")
    return value


def classify(array: Array, count: int, labels: Sequence[str] | None) -> Array:
    """Classification extension: the top `count` of the last axis as `"<value>:<index>[:<label>]"` strings."""
    count = min(count, array.shape[-1])
    order = np.argsort(-array, axis=-1, kind="stable")[..., :count]
    values = np.take_along_axis(array, order, axis=-1)
    flat = [
        f"{np.format_float_positional(v)}:{int(i)}"
        + (f":{labels[int(i)]}" if labels is not None and int(i) < len(labels) else "")
        for v, i in zip(values.reshape(-1), order.reshape(-1), strict=True)
    ]
    return np.array(flat, dtype=object).reshape(order.shape)


def tensor_bytes(array: Array) -> int:
    """The array's size as binary tensor data: its bytes, or for strings their UTF-8 lengths."""
    if array.dtype.kind != "O":
        return int(array.nbytes)
    return sum(len(item.encode("utf-8")) if isinstance(item, str) else len(item) for item in array.reshape(-1))


def _too_large(choices: Sequence[OutputChoice], limit: int) -> PayloadTooLarge:
    names = sorted({choice.name for choice in choices})
    return PayloadTooLarge(
        f"outputs {names}: the answer would hold more than max_response_bytes ({limit}) bytes of tensors; "
        "ask for fewer outputs or send a smaller batch"
    )


def check_json_finite(results: Mapping[str, Array], choices: Sequence[OutputChoice]) -> None:
    """400 for an output asked for as JSON that holds NaN or infinity: JSON has no such numbers, and a
    silent `null` in their place reads as data (a too-short decoder mask once answered every logit null)."""
    for choice in choices:
        array = results[choice.name]
        if not choice.binary and not choice.classification and array.dtype.kind == "f" and not np.isfinite(array).all():
            raise InvalidInput(
                f"outputs {choice.name!r}: the model answered NaN or infinity, which JSON cannot carry; check "
                "the inputs, or request the output as binary data (parameters.binary_data: true)"
            )


def encode_response(
    model_name: str,
    model_version: int,
    request_id: str | None,
    results: Mapping[str, Array],
    choices: Sequence[OutputChoice],
    labels: Mapping[str, Sequence[str]],
    max_tensor_bytes: int | None = None,
) -> tuple[bytes, int | None]:
    """(body, JSON header length or None when the body is plain JSON).

    `max_tensor_bytes`: the most tensor bytes (the outputs' raw sizes, as binary data would carry them)
    one answer may hold; past it, PayloadTooLarge before the output that passes it is encoded, so a
    request cannot make the server build an answer of any size it likes.
    """
    tensors: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    total = 0
    for choice in choices:
        array = results[choice.name]
        if choice.classification:
            array = classify(array, choice.classification, labels.get(choice.name))
        if max_tensor_bytes is not None:
            total += tensor_bytes(array)
            if total > max_tensor_bytes:
                raise _too_large(choices, max_tensor_bytes)
        datatype = v2_from_numpy(array.dtype)
        tensor: dict[str, Any] = {"name": choice.name, "datatype": datatype, "shape": list(array.shape)}
        if choice.binary:
            blob = to_binary(array, datatype)
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = to_json(array, datatype, choice.name)
        tensors.append(tensor)
    response: dict[str, Any] = {"model_name": model_name, "model_version": str(model_version)}
    if request_id:
        response["id"] = request_id
    response["outputs"] = tensors
    head = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    if b"null" in head:  # orjson writes NaN and infinity as null; a fast scan, then the exact check
        check_json_finite(results, choices)
    if not blobs:
        return head, None
    return b"".join([head, *blobs]), len(head)
