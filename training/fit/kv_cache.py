"""The exported signature of a text-generation graph: the KV-cache tensors the serving engine drives.

`service.generation` prefills with past length 0, then feeds one token per step on the cache; these
names, shapes and the export spec are that contract, shared by every text-generation model.
"""

from __future__ import annotations

from typing import Any

import torch

from service.schema.config import GenerationSettings, TensorSpec
from training.export import ExportSpec, InputMaker
from training.models.tiny_gpt import GPTConfig, KVCacheDecoder, TinyGPT

INPUT_IDS, POSITION_IDS, ATTENTION_MASK, LOGITS = "input_ids", "position_ids", "attention_mask", "logits"


def past_names(n_layers: int) -> list[str]:
    return [f"past_key_values.{i}.{kind}" for i in range(n_layers) for kind in ("key", "value")]


def present_names(n_layers: int) -> list[str]:
    return [f"present.{i}.{kind}" for i in range(n_layers) for kind in ("key", "value")]


def tensor_specs(gpt: GPTConfig) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """config.yaml's inputs and outputs: ids, positions and mask [batch, seq], the cache per layer."""
    batch_seq, cache = [-1, -1], [-1, gpt.n_heads, -1, gpt.head_dim]
    inputs = [
        TensorSpec(name=INPUT_IDS, datatype="INT64", shape=batch_seq),
        TensorSpec(name=POSITION_IDS, datatype="INT64", shape=batch_seq),
        TensorSpec(name=ATTENTION_MASK, datatype="INT64", shape=batch_seq),
        *(TensorSpec(name=n, datatype="FP32", shape=cache) for n in past_names(gpt.n_layers)),
    ]
    outputs = [
        TensorSpec(name=LOGITS, datatype="FP32", shape=[-1, -1, gpt.vocab_size]),
        *(TensorSpec(name=n, datatype="FP32", shape=cache) for n in present_names(gpt.n_layers)),
    ]
    return inputs, outputs


def generation_settings(
    gpt: GPTConfig, eos_token_id: int, default_max_tokens: int, max_tokens_limit: int
) -> GenerationSettings:
    return GenerationSettings(
        eos_token_id=eos_token_id,
        context_length=gpt.context_length,
        n_layers=gpt.n_layers,
        n_heads=gpt.n_heads,
        head_dim=gpt.head_dim,
        attention_mask=ATTENTION_MASK,
        default_max_tokens=default_max_tokens,
        max_tokens_limit=max_tokens_limit,
    )


def random_decoder_inputs(gpt: GPTConfig) -> InputMaker:
    """InputMaker for the shared parity check: a decode step with 3 new tokens on a 5-token cache and a
    random padding mask (sizes other than 0 and 1, which torch.export would specialise on)."""

    def make(batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        new, past = 3, 5
        inputs = {
            INPUT_IDS: torch.randint(0, gpt.vocab_size, (batch, new), generator=generator),
            POSITION_IDS: torch.arange(past, past + new).repeat(batch, 1),
            ATTENTION_MASK: (torch.rand(batch, past + new, generator=generator) > 0.3).long(),
        }
        for name in past_names(gpt.n_layers):
            inputs[name] = torch.randn(batch, gpt.n_heads, past, gpt.head_dim, generator=generator)
        return inputs

    return make


def export_spec(model: TinyGPT, metadata: dict[str, Any]) -> ExportSpec:
    """The decoder with its cache as one graph, batch, sequence and past lengths dynamic."""
    gpt = model.config
    return ExportSpec(
        module=KVCacheDecoder(model),
        make_inputs=random_decoder_inputs(gpt),
        output_names=[LOGITS, *present_names(gpt.n_layers)],
        dynamic_axes={
            INPUT_IDS: {0: "batch", 1: "seq"},
            POSITION_IDS: {0: "batch", 1: "seq"},
            ATTENTION_MASK: {0: "batch", 1: "total"},
            **{name: {0: "batch", 2: "past"} for name in past_names(gpt.n_layers)},
        },
        metadata=metadata,
    )
