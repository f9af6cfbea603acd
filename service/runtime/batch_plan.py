"""What a model's config says about batching it: sequence padding, the policy, the determinism switch.

Kept apart from `ServedModel` because it is pure reading of config and graph, decided once per load.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.batching import NO_PADDING, BatchPolicy, SequencePadding
from service.schema.config import ModelConfig, TensorSpec

EXACT_BATCH_PARAMETER = "exact_batch_requests"
"""`parameters.exact_batch_requests: N` in config.yaml: the test-only determinism switch (docs/batching.md)."""


def padding_for(config: ModelConfig, graph_inputs: Sequence[Any], graph_outputs: Sequence[Any]) -> SequencePadding:
    """Pad text inputs to the batch's longest sequence, but only for models declared padding-invariant.

    `text.padding: longest` says the model's answer does not depend on padding (the attention mask
    hides it), so requests of different lengths may share a batch. With `max_length`, the model (a
    bidirectional LSTM, say) sees its own padding, so requests are batched only with others of the very
    same length, which every `:predict` request of that model has anyway. `graph_*` are ONNX Runtime's
    NodeArgs (`name`, `shape` with symbolic dimension names), which tell the outputs that carry the
    sequence axis.
    """
    text = config.text
    if config.task != "text-classification" or text is None or text.padding != "longest":
        return NO_PADDING
    pad_values: dict[str, int] = {text.input_ids: text.pad_token_id}
    if text.attention_mask is not None:
        pad_values[text.attention_mask] = 0
    return SequencePadding.from_graph(
        pad_values,
        {arg.name: arg.shape for arg in graph_inputs},
        {arg.name: arg.shape for arg in graph_outputs},
    )


def batch_axis_problem(inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]) -> str | None:
    """Why axis 0 is not a batch axis, or None when it is: every input and output must have a variable
    first dimension, as Triton's ONNX auto-complete decides (graph and config.yaml agreeing, see
    `service.repository.graph.reconcile`). A scalar, or a fixed first dimension (a model exported with
    batch size 1), cannot be concatenated with another request's along it."""
    for kind, specs in (("input", inputs), ("output", outputs)):
        for spec in specs:
            if not spec.shape:
                return f"{kind} {spec.name!r} is a scalar"
            if spec.shape[0] != -1:
                return f"{kind} {spec.name!r} has a fixed first dimension {spec.shape[0]} ({spec.shape})"
    return None


def exact_batch_requests(config: ModelConfig) -> int | None:
    """The determinism switch from `parameters`, checked: a bad value fails the load, naming the field."""
    value = config.parameters.get(EXACT_BATCH_PARAMETER)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"parameters.{EXACT_BATCH_PARAMETER}: expected a positive integer, got {value!r}")
    return value


def policy_for(
    config: ModelConfig, default_timeout_s: float | None, isolate_failures: bool = False, *, batch_axis: bool = True
) -> BatchPolicy:
    """The batcher policy of a model: its `batching` section, the server's default deadline and failure
    isolation, the switch. Without a batch axis, `max_batch_size` is 0 (Triton's meaning: requests run
    alone with their exact shapes) whatever config.yaml asks."""
    settings = config.batching
    if not batch_axis:
        settings = settings.model_copy(update={"max_batch_size": 0, "preferred_batch_sizes": []})
    return BatchPolicy.from_settings(
        settings,
        default_timeout_s=default_timeout_s,
        exact_batch_requests=exact_batch_requests(config),
        isolate_failures=isolate_failures,
    )
