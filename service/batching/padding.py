"""Joining requests into one batch and splitting the model's answer back (pure numpy, no scheduling).

Variable-length inputs (token ids, attention masks) are right-padded to the longest sequence in the batch;
outputs that carry the same sequence axis are sliced back to each request's own length, so a request's
answer has the shape it would have had alone. By default only requests in the same power-of-two length
band share a batch: padding a batch of short texts to one long outlier cost 2-4x more than running the
bands separately (docs/batching.md).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from service.batching.errors import BatchOutputError, InvalidInputError

Tensors = dict[str, np.ndarray]
PadValue = int | float | bool
Dim = int | str | None
"""A graph dimension as ONNX Runtime reports it: a size, a symbolic name, or unknown."""

Signature = tuple[tuple[tuple[str, str, tuple[int, ...]], ...], int]
"""What must match for two requests to share a batch: names, dtypes, fixed dimensions, length band."""


@dataclass(frozen=True)
class SequencePadding:
    """Which inputs have a variable sequence axis, their pad values, and which outputs carry that axis.

    `pad_values` maps an input name to its pad value (e.g. `{"input_ids": pad_token_id,
    "attention_mask": 0}`); `outputs` names outputs whose `axis` is the same sequence axis. With
    `bucketing` (the default) requests are batched only with others of the same length band
    (1, 2, 3-4, 5-8, 9-16, ...); without it everything is padded to the batch's longest sequence.
    `side="left"` pads in front instead, as decoder prefill wants (each sequence's last token last).
    """

    pad_values: Mapping[str, PadValue]
    axis: int = 1
    outputs: frozenset[str] = frozenset()
    bucketing: bool = True
    side: Literal["right", "left"] = "right"

    def __post_init__(self) -> None:
        if self.axis < 1:
            raise ValueError(f"the sequence axis must come after the batch axis (>= 1), got {self.axis}")

    @classmethod
    def from_graph(
        cls,
        pad_values: Mapping[str, PadValue],
        input_shapes: Mapping[str, Sequence[Dim]],
        output_shapes: Mapping[str, Sequence[Dim]],
        axis: int = 1,
        *,
        bucketing: bool = True,
        side: Literal["right", "left"] = "right",
    ) -> SequencePadding:
        """Find the outputs that share the padded inputs' symbolic sequence dimension in the graph.

        An output is sliced back only when its dimension at `axis` has the same symbolic name (e.g.
        "sequence") as a padded input's; with no symbolic names nothing is sliced.
        """
        symbols = {
            shape[axis]
            for name, shape in input_shapes.items()
            if name in pad_values and len(shape) > axis and isinstance(shape[axis], str)
        }
        outputs = frozenset(
            name for name, shape in output_shapes.items() if len(shape) > axis and shape[axis] in symbols
        )
        return cls(pad_values=dict(pad_values), axis=axis, outputs=outputs, bucketing=bucketing, side=side)

    def band(self, length: int | None) -> int:
        """The length band a request is batched in (0 for every request when not bucketing)."""
        if length is None or not self.bucketing:
            return 0
        return (length - 1).bit_length()

    def positions(self, length: int, padded: int) -> slice:
        """Where a sequence of `length` sits along the sequence axis of a batch padded to `padded`."""
        return slice(0, length) if self.side == "right" else slice(padded - length, padded)


NO_PADDING = SequencePadding(pad_values={})


def count_samples(inputs: Mapping[str, np.ndarray]) -> int:
    """Samples a request carries (its batch axis), checking every input agrees."""
    if not inputs:
        raise InvalidInputError("request has no input tensors")
    sizes: dict[str, int] = {}
    for name, array in inputs.items():
        if array.ndim == 0:
            raise InvalidInputError(f"input {name!r} is a scalar; every input needs a batch axis")
        sizes[name] = array.shape[0]
    if len(set(sizes.values())) != 1:
        raise InvalidInputError(f"inputs disagree on the batch size (axis 0): {sizes}")
    samples = next(iter(sizes.values()))
    if samples < 1:
        raise InvalidInputError("request carries no samples (batch axis of size 0)")
    return samples


def sequence_length(inputs: Mapping[str, np.ndarray], padding: SequencePadding) -> int | None:
    """The request's sequence length, or None when it has no padded input; padded inputs must agree."""
    lengths: dict[str, int] = {}
    for name, pad in padding.pad_values.items():
        array = inputs.get(name)
        if array is None:
            continue
        if array.ndim <= padding.axis:
            raise InvalidInputError(
                f"input {name!r} has shape {list(array.shape)}, with no sequence axis {padding.axis}"
            )
        if not _holds(array.dtype, pad):
            raise InvalidInputError(
                f"input {name!r} of dtype {array.dtype} cannot hold the pad value {pad!r}"
            )
        lengths[name] = array.shape[padding.axis]
    if len(set(lengths.values())) > 1:
        raise InvalidInputError(
            f"padded inputs disagree on the sequence length (axis {padding.axis}): {lengths}"
        )
    return next(iter(lengths.values()), None)


@functools.cache
def _holds(dtype: np.dtype[Any], pad: PadValue) -> bool:
    """Whether `dtype` represents the pad value exactly (asked once per dtype and pad, not per request)."""
    with np.errstate(all="ignore"):
        return bool(np.asarray(pad).astype(dtype) == pad)


def signature(inputs: Mapping[str, np.ndarray], padding: SequencePadding, length: int | None) -> Signature:
    """Requests with equal signatures can be concatenated (after padding the sequence axis)."""
    parts = []
    for name in sorted(inputs):
        array = inputs[name]
        shape = array.shape
        # Past the batch axis every dimension must match, except a padded input's sequence axis.
        free = name in padding.pad_values
        dims = (*shape[1 : padding.axis], -1, *shape[padding.axis + 1 :]) if free else shape[1:]
        parts.append((name, array.dtype.str, dims))
    return tuple(parts), padding.band(length)


def assemble(
    parts: Sequence[Mapping[str, np.ndarray]], lengths: Sequence[int | None], padding: SequencePadding
) -> Tensors:
    """Concatenate requests of one signature along axis 0, padding the sequence axis."""
    if len(parts) == 1:
        return dict(parts[0])
    longest = max((n for n in lengths if n is not None), default=None)
    batch: Tensors = {}
    for name in parts[0]:
        arrays = [p[name] for p in parts]
        if name not in padding.pad_values or longest is None:
            batch[name] = np.concatenate(arrays, axis=0)
            continue
        shape = list(arrays[0].shape)
        shape[0] = sum(a.shape[0] for a in arrays)
        shape[padding.axis] = longest
        out = np.full(shape, padding.pad_values[name], dtype=arrays[0].dtype)
        row = 0
        for array in arrays:
            rows = slice(row, row + array.shape[0])
            out[_region(rows, padding.axis, padding.positions(array.shape[padding.axis], longest))] = array
            row += array.shape[0]
        batch[name] = out
    return batch


def split(
    outputs: Mapping[str, np.ndarray],
    sizes: Sequence[int],
    lengths: Sequence[int | None],
    padding: SequencePadding,
) -> list[Tensors]:
    """Cut the batch's outputs back into one dict per request, checking the batch axis first."""
    total = sum(sizes)
    for name, array in outputs.items():
        if array.ndim == 0 or array.shape[0] != total:
            got = "a scalar" if array.ndim == 0 else f"batch size {array.shape[0]}"
            raise BatchOutputError(f"output {name!r} has {got}, but the batch held {total} samples")
    longest = max((n for n in lengths if n is not None), default=None)
    for name in padding.outputs & outputs.keys():
        array = outputs[name]
        if longest is not None and (array.ndim <= padding.axis or array.shape[padding.axis] != longest):
            raise BatchOutputError(
                f"output {name!r} has shape {list(array.shape)}, expected the padded sequence length "
                f"{longest} on axis {padding.axis}"
            )
    results: list[Tensors] = []
    row = 0
    for size, length in zip(sizes, lengths, strict=True):
        rows = slice(row, row + size)
        answer: Tensors = {}
        for name, array in outputs.items():
            if name in padding.outputs and length is not None and length != longest:
                positions = padding.positions(length, array.shape[padding.axis])
                answer[name] = array[_region(rows, padding.axis, positions)]
            else:
                answer[name] = array[rows]
        results.append(answer)
        row += size
    return results


def _region(rows: slice, axis: int, positions: slice) -> tuple[slice, ...]:
    """Index selecting some rows and some positions of the sequence axis, all of every axis between."""
    return (rows, *(slice(None),) * (axis - 1), positions)
