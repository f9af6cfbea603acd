"""The sequence rules a model's config implies, checked on v2 infer requests before they reach a batch.

`:predict` and generation tokenize text themselves and never exceed `text.max_length` or the generation
`context_length`; a v2 client sends token tensors of any length, and ONNX Runtime's cost (time and arena
memory) grows with the sequence, quadratically in attention: one request with T=8192 took ~11 s and left
gigabytes behind. So every axis the config bounds is bounded here (413 naming the input, the axis and the
limit), and the inputs that must agree (a text model's ids and mask, a decoder's ids, positions, mask and
cache) are checked against each other (400), rather than failing inside ONNX Runtime or answering NaN.
"""

from __future__ import annotations

from collections.abc import Mapping

from service.errors import InvalidInput, PayloadTooLarge
from service.protocol.tensors import Array
from service.schema.config import GenerationSettings, ModelConfig, TextPreprocessing

SEQUENCE_AXIS = 1
"""Token tensors are [batch, sequence]."""
PAST_AXIS = 2
"""A decoder's cache tensors are [batch, heads, past, head_dim]."""


def check_sequences(config: ModelConfig, arrays: Mapping[str, Array]) -> None:
    """Raise for a request the model's config does not allow; returns at once for other models."""
    if config.text is not None:
        _check_text(config.text, arrays)
    if config.generation is not None:
        _check_generation(config.generation, arrays)


def _bound(arrays: Mapping[str, Array], name: str, axis: int, limit: int, setting: str) -> int:
    array = arrays.get(name)
    if array is None or array.ndim <= axis:
        return 0
    length = int(array.shape[axis])
    if length > limit:
        raise PayloadTooLarge(f"inputs {name!r}: axis {axis} is {length} long, more than {setting} ({limit})")
    return length


def _same_shape(arrays: Mapping[str, Array], first: str, second: str) -> None:
    a, b = arrays.get(first), arrays.get(second)
    if a is not None and b is not None and a.shape != b.shape:
        raise InvalidInput(f"inputs {first!r} {list(a.shape)} and {second!r} {list(b.shape)}: must have the same shape")


def _check_text(text: TextPreprocessing, arrays: Mapping[str, Array]) -> None:
    for name in (text.input_ids, text.attention_mask):
        if name is not None:
            _bound(arrays, name, SEQUENCE_AXIS, text.max_length, "text.max_length")
    if text.attention_mask is not None:
        _same_shape(arrays, text.input_ids, text.attention_mask)


def _check_generation(gen: GenerationSettings, arrays: Mapping[str, Array]) -> None:
    limit, setting = gen.context_length, "generation.context_length"
    sequence = _bound(arrays, gen.input_ids, SEQUENCE_AXIS, limit, setting)
    _bound(arrays, gen.position_ids, SEQUENCE_AXIS, limit, setting)
    total = _bound(arrays, gen.attention_mask, SEQUENCE_AXIS, limit, setting)
    _same_shape(arrays, gen.input_ids, gen.position_ids)
    caches = [
        template.format(layer=layer)
        for layer in range(gen.n_layers)
        for template in (gen.past_key_template, gen.past_value_template)
    ]
    past = [_bound(arrays, name, PAST_AXIS, limit, setting) for name in caches]
    for name in caches[1:]:
        _same_shape(arrays, caches[0], name)
    if gen.attention_mask in arrays and gen.input_ids in arrays and total != past[0] + sequence:
        raise InvalidInput(
            f"inputs {gen.attention_mask!r}: axis {SEQUENCE_AXIS} is {total} long, must be the cache's past length "
            f"({past[0]}, axis {PAST_AXIS} of {caches[0]!r}) plus the sequence ({sequence}, {gen.input_ids!r})"
        )
    positions = arrays.get(gen.position_ids)
    if positions is not None and positions.size and (positions.min() < 0 or positions.max() >= limit):
        raise InvalidInput(
            f"inputs {gen.position_ids!r}: positions must lie in [0, {limit - 1}] ({setting}), "
            f"got {int(positions.min())}..{int(positions.max())}"
        )
