"""The committed export against torch, and the property exact batching rests on: a row's logits do not
depend on its padding or its neighbours."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from service.generation.params import SamplingParams
from service.generation.text import TextTokenizer
from service.schema.config import ModelConfig

PARITY_FILE = "decode_parity.json"


def run_decoder(
    session: ort.InferenceSession, config: ModelConfig, prompts: list[list[int]], steps: int
) -> list[list[np.ndarray]]:
    """Greedy decoding of left-padded `prompts` on the raw graph; per row, the logits of every step."""
    settings = config.generation
    assert settings is not None
    rows, width = len(prompts), max(map(len, prompts))
    ids = np.zeros((rows, width), np.int64)
    positions = np.zeros((rows, width), np.int64)
    mask = np.zeros((rows, width), np.int64)
    for r, prompt in enumerate(prompts):
        ids[r, width - len(prompt) :], positions[r, width - len(prompt) :] = prompt, np.arange(len(prompt))
        mask[r, width - len(prompt) :] = 1
    names = [f"past_key_values.{i}.{kind}" for i in range(settings.n_layers) for kind in ("key", "value")]
    past = [np.zeros((rows, settings.n_heads, 0, settings.head_dim), np.float32) for _ in names]
    following = np.array([[len(p)] for p in prompts], np.int64)
    history: list[list[np.ndarray]] = [[] for _ in prompts]
    for _ in range(steps):
        feeds = {"input_ids": ids, "position_ids": positions, "attention_mask": mask}
        logits, *past = session.run(None, {**feeds, **dict(zip(names, past, strict=True))})
        for r in range(rows):
            history[r].append(logits[r, -1])
        chosen = logits[:, -1].argmax(-1)[:, None].astype(np.int64)  # (rows, 1)
        ids, positions, following = chosen, following, following + 1
        mask = np.concatenate([mask, np.ones((rows, 1), np.int64)], axis=1)
    return history


def test_export_recorded_passing_greedy_parity(version_dir: Path) -> None:
    record = json.loads((version_dir / PARITY_FILE).read_text())
    assert record["passed"] is True
    assert len(record["prompts"]) >= 3
    assert all(len(p["tokens"]) == 64 for p in record["prompts"])


@pytest.mark.anyio
async def test_engine_greedy_equals_torch_without_cache(version_dir: Path, make_engine: Any) -> None:
    """Torch recomputing the whole context (recorded at export) vs the engine on ORT with the cache."""
    record = json.loads((version_dir / PARITY_FILE).read_text())
    async with make_engine() as engine:
        eos = engine.settings.eos_token_id
        for entry in record["prompts"]:
            reference: list[int] = entry["tokens"]
            ended = reference.index(eos) if eos in reference else len(reference)
            result = await engine.generate(entry["prompt"], SamplingParams(temperature=0, max_tokens=64))
            assert result.text == engine.tokenizer.decode(reference[:ended]), entry["prompt"]
            assert result.finish_reason == ("eos_token" if ended < len(reference) else "length")


def test_padded_batch_rows_are_bit_identical_to_decoding_alone(
    session: ort.InferenceSession, model_config: ModelConfig, tokenizer: TextTokenizer
) -> None:
    """Lengths from 1 to past 300 keys, so left padding moves rows across ONNX Runtime's 256-key GEMM
    blocks; equality is exact, not approximate."""
    text = "Friends, Romans, countrymen, lend me your ears; I come to bury Caesar, not to praise him.\n" * 40
    ids = tokenizer.encode(text)
    prompts = [ids[:1], ids[:7], ids[:120], ids[:300], ids[5:42]]
    together = run_decoder(session, model_config, prompts, steps=24)
    for prompt, batched in zip(prompts, together, strict=True):
        alone = run_decoder(session, model_config, [prompt], steps=24)[0]
        for step, (a, b) in enumerate(zip(alone, batched, strict=True)):
            assert np.array_equal(a, b), f"prompt of {len(prompt)} tokens differs at step {step}"
