"""Check a config.yaml against the ONNX graph it describes: names, datatypes, ranks and fixed dimensions.

Config and graph must agree, since clients rely on the metadata built from them. When config.yaml
lists no inputs or outputs (a user's own model), the graph's own signature is served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.runtime.datatypes import v2_from_ort
from service.runtime.session import LoadError
from service.schema.config import ModelConfig, TensorSpec


def graph_specs(nodes: Sequence[Any], where: str) -> list[TensorSpec]:
    """TensorSpecs of ONNX Runtime NodeArgs; symbolic or unknown dimensions become -1."""
    specs = []
    for node in nodes:
        try:
            datatype = v2_from_ort(node.type)
        except ValueError as exc:
            raise LoadError(f"{where} {node.name!r}: {exc}") from None
        shape = [d if isinstance(d, int) and d > 0 else -1 for d in node.shape]
        specs.append(TensorSpec(name=node.name, datatype=datatype, shape=shape))
    return specs


DimNames = tuple[str | None, ...]
"""An input's dimension names: the symbol of each named symbolic dimension, None for a fixed or unnamed one."""


@dataclass(frozen=True)
class SharedDim:
    """A symbolic dimension that several input axes name: in ONNX one name is one size, so a request
    whose axes disagree would only fail inside the graph (checked before the run instead)."""

    symbol: str
    axes: tuple[tuple[str, int], ...]
    """(input name, axis) of every axis that names it, in the graph's order; at least two."""


def input_dim_names(nodes: Sequence[Any]) -> dict[str, DimNames]:
    """Each graph input's dimension names (ONNX Runtime NodeArgs: a symbolic dimension is a string)."""
    return {node.name: tuple(d if isinstance(d, str) and d else None for d in node.shape or ()) for node in nodes}


def shared_dims(dim_names: Mapping[str, DimNames]) -> tuple[SharedDim, ...]:
    """The symbolic dimensions named by more than one input axis; () for most models (one input, or no
    name repeated), which then skip the check."""
    axes: dict[str, list[tuple[str, int]]] = {}
    for name, dims in dim_names.items():
        for axis, symbol in enumerate(dims):
            if symbol is not None:
                axes.setdefault(symbol, []).append((name, axis))
    return tuple(SharedDim(symbol, tuple(where)) for symbol, where in axes.items() if len(where) > 1)


def _merge(declared: TensorSpec, actual: TensorSpec, where: str) -> TensorSpec:
    """One spec that satisfies both, or a LoadError naming the disagreement."""
    if declared.datatype != actual.datatype:
        raise LoadError(
            f"{where}: {declared.name!r} datatype is {declared.datatype} in config.yaml "
            f"but {actual.datatype} in the graph"
        )
    if len(declared.shape) != len(actual.shape):
        raise LoadError(
            f"{where}: {declared.name!r} shape {declared.shape} in config.yaml has rank "
            f"{len(declared.shape)} "
            f"but the graph's {actual.shape} has rank {len(actual.shape)}"
        )
    shape = []
    for axis, (mine, theirs) in enumerate(zip(declared.shape, actual.shape, strict=True)):
        if mine != -1 and theirs != -1 and mine != theirs:
            raise LoadError(
                f"{where}: {declared.name!r} dimension {axis} is {mine} in config.yaml "
                f"but {theirs} in the graph ({actual.shape})"
            )
        shape.append(mine if mine != -1 else theirs)
    return TensorSpec(name=declared.name, datatype=declared.datatype, shape=shape)


def reconcile(
    config: ModelConfig, graph_inputs: list[TensorSpec], graph_outputs: list[TensorSpec], config_path: Path
) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The inputs and outputs to serve. Every graph input must be declared; outputs may be a subset."""
    inputs = graph_inputs
    if config.inputs:
        by_name = {spec.name: spec for spec in graph_inputs}
        declared = {spec.name for spec in config.inputs}
        missing = [name for name in by_name if name not in declared]
        unknown = [spec.name for spec in config.inputs if spec.name not in by_name]
        if unknown or missing:
            raise LoadError(
                f"{config_path}: inputs: config.yaml names {sorted(declared)} but the graph's inputs are "
                f"{sorted(by_name)}"
            )
        inputs = [_merge(spec, by_name[spec.name], f"{config_path}: inputs") for spec in config.inputs]
    outputs = graph_outputs
    if config.outputs:
        by_name = {spec.name: spec for spec in graph_outputs}
        unknown = [spec.name for spec in config.outputs if spec.name not in by_name]
        if unknown:
            raise LoadError(
                f"{config_path}: outputs: {unknown} not among the graph's outputs {sorted(by_name)}"
            )
        outputs = [_merge(spec, by_name[spec.name], f"{config_path}: outputs") for spec in config.outputs]
    return inputs, outputs
