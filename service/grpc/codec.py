"""Protobuf messages <-> the data plane's values: tensors, parameters, and the transport-neutral views.

Inputs are checked by the same functions as HTTP's JSON (`service.protocol.infer`), so both protocols
refuse the same requests with the same messages; only where the bytes come from differs. Outputs always
go back as `raw_output_contents` (what Triton sends and `tritonclient.grpc` reads first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from google.protobuf import json_format

from service.errors import InvalidInput
from service.grpc.generated import grpc_service_pb2 as pb
from service.grpc.generated import model_config_pb2 as config_pb
from service.protocol.infer import DecodedRequest, check_input, choose_outputs, classify, finish_inputs
from service.protocol.tensors import Array, from_binary, from_json, to_binary
from service.runtime.datatypes import v2_from_numpy
from service.runtime.model import ServedModel

CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
"""The typed `InferTensorContents` field of each datatype; FP16 and BF16 travel as raw contents only."""

ParameterMessage = pb.InferParameter | pb.ModelRepositoryParameter


def parameter_values(parameters: Mapping[str, ParameterMessage]) -> dict[str, Any]:
    """A protobuf parameter map as plain values (the oneof that is set), as HTTP's JSON gives them."""
    values: dict[str, Any] = {}
    for key, parameter in parameters.items():
        kind = parameter.WhichOneof("parameter_choice")
        values[key] = None if kind is None else getattr(parameter, kind)
    return values


def decode_infer_request(request: pb.ModelInferRequest, model: ServedModel, *, finite: bool) -> DecodedRequest:
    """Arrays for every model input and the outputs to return, checked as HTTP checks them."""
    raw = request.raw_input_contents
    mixed = [t.name for t in request.inputs if t.HasField("contents")] if raw else []
    if mixed:  # Triton's words, which its clients and examples look for
        raise InvalidInput(
            f"contents field must not be specified when using raw_input_contents for {mixed[0]!r} "
            f"for model {model.name!r}"
        )
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(
            f"raw_input_contents: {len(raw)} entries for {len(request.inputs)} inputs; send one per input, "
            "in the order of `inputs`"
        )
    specs = {spec.name: spec for spec in model.inputs}
    arrays: dict[str, Array] = {}
    labels: dict[str, str] = {}
    for i, tensor in enumerate(request.inputs):
        shape = list(tensor.shape)
        where = check_input(i, tensor.name, tensor.datatype, shape, specs, labels)
        if raw:
            arrays[tensor.name] = from_binary(raw[i], tensor.datatype, shape, where, "raw_input_contents size")
        else:
            arrays[tensor.name] = typed_contents(tensor, shape, where)
    finish_inputs(arrays, specs, labels, finite=finite, shared=model.shared_dims)
    requested = [(o.name, parameter_values(o.parameters)) for o in request.outputs] or None
    return DecodedRequest(request.id or None, arrays, choose_outputs(requested, model.outputs, True))


def typed_contents(tensor: pb.ModelInferRequest.InferInputTensor, shape: list[int], where: str) -> Array:
    field = CONTENTS_FIELD.get(tensor.datatype)
    if field is None:
        raise InvalidInput(f"{where}: {tensor.datatype} has no typed contents field; send it in raw_input_contents")
    if not tensor.HasField("contents"):
        raise InvalidInput(f"{where}: no contents.{field} and no raw_input_contents")
    values = list(getattr(tensor.contents, field))
    if tensor.datatype == "BYTES":
        try:
            values = [value.decode("utf-8") for value in values]
        except UnicodeDecodeError:
            raise InvalidInput(f"{where}: BYTES element is not UTF-8 text (models here take strings)") from None
    return from_json(values, tensor.datatype, shape, where)


def encode_infer_response(
    model: ServedModel,
    decoded: DecodedRequest,
    results: Mapping[str, Array],
    labels: Mapping[str, Sequence[str]],
) -> pb.ModelInferResponse:
    response = pb.ModelInferResponse(model_name=model.name, model_version=str(model.version), id=decoded.id or "")
    for choice in decoded.outputs:
        array = results[choice.name]
        if choice.classification:
            array = classify(array, choice.classification, labels.get(choice.name))
        datatype = v2_from_numpy(array.dtype)
        response.outputs.add(name=choice.name, datatype=datatype, shape=array.shape)
        response.raw_output_contents.append(to_binary(array, datatype))
    return response


def server_metadata(view: Mapping[str, Any]) -> pb.ServerMetadataResponse:
    return pb.ServerMetadataResponse(name=view["name"], version=view["version"], extensions=view["extensions"])


def model_metadata(view: Mapping[str, Any]) -> pb.ModelMetadataResponse:
    def tensors(items: Sequence[Mapping[str, Any]]) -> list[pb.ModelMetadataResponse.TensorMetadata]:
        return [
            pb.ModelMetadataResponse.TensorMetadata(name=t["name"], datatype=t["datatype"], shape=t["shape"])
            for t in items
        ]

    return pb.ModelMetadataResponse(
        name=view["name"],
        versions=view["versions"],
        platform=view["platform"],
        inputs=tensors(view["inputs"]),
        outputs=tensors(view["outputs"]),
    )


OWN_CONFIG = "nnserve"
"""The view's key for nnserve's own config.yaml values: no ModelConfig field, so it goes in as a JSON string
parameter under the same name."""


def model_config(view: Mapping[str, Any]) -> config_pb.ModelConfig:
    """The view as Triton's `ModelConfig` message (fields the message lacks are left out)."""
    message = json_format.ParseDict(
        {k: v for k, v in view.items() if k != OWN_CONFIG}, config_pb.ModelConfig(), ignore_unknown_fields=True
    )
    if OWN_CONFIG in view:
        message.parameters[OWN_CONFIG].string_value = orjson.dumps(view[OWN_CONFIG]).decode()
    return message


def model_statistics(body: Mapping[str, Any]) -> pb.ModelStatisticsResponse:
    """The statistics extension's JSON (field for field the protobuf's) as its message."""
    return json_format.ParseDict(dict(body), pb.ModelStatisticsResponse(), ignore_unknown_fields=True)


def repository_index(rows: Sequence[Mapping[str, str]]) -> pb.RepositoryIndexResponse:
    return pb.RepositoryIndexResponse(
        models=[
            pb.RepositoryIndexResponse.ModelIndex(
                name=row["name"], version=row["version"], state=row["state"], reason=row["reason"]
            )
            for row in rows
        ]
    )
