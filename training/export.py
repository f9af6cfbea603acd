"""ONNX export with the checks that make a served graph trustworthy.

`torch.onnx.export(dynamo=True)` (torch.export based, the default since torch 2.9) is the default here:
it keeps batch and sequence axes symbolic through attention reshapes, where the legacy TorchScript
exporter bakes the traced sizes in. torch.export cannot keep an `nn.LSTM`'s sequence axis dynamic
(it specialises it), so LSTM models ask for the TorchScript exporter, which maps `nn.LSTM` onto the
ONNX LSTM operator. Either way the result must be one self-contained file, pass `onnx.checker`, keep
the declared axes symbolic, and agree with torch on fresh random inputs at batch sizes 1, 7 and 64,
or the export fails.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn
from torch.export import Dim

PARITY_BATCH_SIZES = (1, 7, 64)
PARITY_TOLERANCE = 1e-4
"""Max absolute difference allowed between torch and ONNX Runtime outputs."""
METADATA_PREFIX = "nnserve."

InputMaker = Callable[[int, torch.Generator], dict[str, torch.Tensor]]
"""(batch size, generator) -> fresh random inputs by name, in the module's argument order."""


class ExportError(RuntimeError):
    """The exported graph is missing, malformed, or disagrees with the torch model."""


@dataclass(frozen=True)
class ExportSpec:
    module: nn.Module
    """Returns the outputs in `output_names` order; exported in eval mode."""
    make_inputs: InputMaker
    output_names: list[str]
    dynamic_axes: Mapping[str, Mapping[int, str]]
    """Input name -> {axis: symbolic dimension name}; equal names are one dimension (e.g. `batch`)."""
    metadata: Mapping[str, object] = field(default_factory=dict)
    """Written into the graph's metadata_props as JSON under `nnserve.<key>`."""
    exporter: Literal["dynamo", "torchscript"] = "dynamo"
    """`torchscript` only where torch.export cannot keep an axis dynamic (nn.LSTM); see the module doc."""


@dataclass(frozen=True)
class ParityReport:
    max_abs_diff: dict[int, float]
    """Batch size -> worst absolute difference over all outputs."""

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff.values())


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[io.StringIO]:
    """Silence the exporter's progress prints, internal deprecation warnings and optional-op logs.

    They say nothing about our model; the checks after export are what guard correctness. The captured
    text is kept for the error message if export fails.
    """
    captured = io.StringIO()
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(captured):
            warnings.simplefilter("ignore")
            yield captured
    finally:
        logger.setLevel(level)


def _dynamic_shapes(module: nn.Module, spec: ExportSpec, example: dict[str, torch.Tensor]) -> dict[str, Any]:
    """torch.export's `dynamic_shapes`, keyed by forward() parameter; a `*inputs` parameter gets a tuple."""
    dims: dict[str, Any] = {}

    def shape_of(name: str) -> dict[int, Any] | None:
        axes = spec.dynamic_axes.get(name)
        return {a: dims.setdefault(d, Dim(d)) for a, d in axes.items()} if axes else None

    names = iter(example)
    shapes: dict[str, Any] = {}
    for param, value in inspect.signature(module.forward).bind(*example.values()).arguments.items():
        shapes[param] = (
            tuple(shape_of(next(names)) for _ in value) if isinstance(value, tuple) else shape_of(next(names))
        )
    return shapes


def _check_graph(model: onnx.ModelProto, spec: ExportSpec, names: list[str]) -> None:
    onnx.checker.check_model(model, full_check=True)
    inputs = {i.name: i for i in model.graph.input}
    outputs = [o.name for o in model.graph.output]
    if sorted(inputs) != sorted(names) or outputs != spec.output_names:
        raise ExportError(
            f"graph has inputs {sorted(inputs)} and outputs {outputs}; wanted {names} and {spec.output_names}"
        )
    for name, axes in spec.dynamic_axes.items():
        dims = inputs[name].type.tensor_type.shape.dim
        fixed = [a for a in axes if not dims[a].dim_param]
        if fixed:
            raise ExportError(f"input {name!r}: axes {fixed} were exported with a fixed size, not as dynamic")


def check_parity(module: nn.Module, path: Path, make_inputs: InputMaker, seed: int = 0) -> ParityReport:
    """Run torch and ONNX Runtime on the same fresh random inputs; fail beyond PARITY_TOLERANCE."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    report: dict[int, float] = {}
    for batch in PARITY_BATCH_SIZES:
        inputs = make_inputs(batch, generator)
        with torch.no_grad():
            expected = module(*inputs.values())
        expected_list = [expected] if isinstance(expected, torch.Tensor) else list(expected)
        try:
            got = session.run(None, {k: v.numpy() for k, v in inputs.items()})
        except Exception as exc:  # ONNX Runtime's error types are not public API
            raise ExportError(f"batch {batch}: ONNX Runtime cannot run the graph: {exc}") from exc
        worst = 0.0
        for want, have in zip(expected_list, got, strict=True):
            if tuple(want.shape) != have.shape:
                raise ExportError(f"batch {batch}: ONNX output shape {have.shape} != torch {tuple(want.shape)}")
            if not np.isfinite(have).all():
                raise ExportError(f"batch {batch}: ONNX output holds NaN or infinity")
            worst = max(worst, float(np.abs(want.numpy() - have).max()))
        if worst > PARITY_TOLERANCE:
            raise ExportError(f"batch {batch}: max abs difference {worst:.3g} exceeds {PARITY_TOLERANCE}")
        report[batch] = worst
    return ParityReport(report)


def export_onnx(spec: ExportSpec, path: Path, seed: int = 0) -> ParityReport:
    """Export `spec.module` to `path` (one file), check it, and return the parity figures."""
    module = spec.module.eval()
    example = spec.make_inputs(2, torch.Generator().manual_seed(seed))
    names = list(example)
    with _quiet_exporter() as log:
        try:
            if spec.exporter == "dynamo":
                torch.onnx.export(
                    module,
                    tuple(example.values()),
                    str(path),
                    input_names=names,
                    output_names=spec.output_names,
                    dynamic_shapes=_dynamic_shapes(module, spec, example),
                    dynamo=True,
                    external_data=False,
                    optimize=True,
                )
            else:
                batch_axis = {name: {0: "batch"} for name in spec.output_names}
                torch.onnx.export(
                    module,
                    tuple(example.values()),
                    str(path),
                    input_names=names,
                    output_names=spec.output_names,
                    dynamic_axes={**batch_axis, **{k: dict(v) for k, v in spec.dynamic_axes.items()}},
                    dynamo=False,
                )
        except Exception as exc:
            raise ExportError(f"torch.onnx.export failed: {exc}\n{log.getvalue()[-2000:]}") from exc
    model = onnx.load(str(path))
    for key, value in spec.metadata.items():
        model.metadata_props.add(key=METADATA_PREFIX + key, value=json.dumps(value, sort_keys=True))
    _check_graph(model, spec, names)
    onnx.save(model, str(path))
    return check_parity(module, path, spec.make_inputs, seed=seed + 1)
