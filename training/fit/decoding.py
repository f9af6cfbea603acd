"""The decoding checks an exported text-generation graph must pass before it is published.

Beyond the shared random-input parity, greedy decoding through ONNX Runtime with the KV cache must give
exactly the tokens torch gives without a cache, and decoding the prompts together (left-padded) must give
exactly the tokens each gives alone: the property the serving engine's batching rests on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from tokenizers import Tokenizer

from training.export import ExportError
from training.fit.kv_cache import ATTENTION_MASK, INPUT_IDS, POSITION_IDS, past_names
from training.models.tiny_gpt import GPTConfig, TinyGPT

PARITY_FILE = "decode_parity.json"
PARITY_PROMPTS = 5
PARITY_TOKENS = 64
PROMPT_CHARACTERS = 40


def parity_prompts(texts: list[str], count: int = PARITY_PROMPTS) -> tuple[str, ...]:
    """`count` prompts from lines spread evenly over held-out text (not just its first lines, which are
    often a title page), each cut to PROMPT_CHARACTERS so it continues mid-line."""
    lines = [line.strip()[:PROMPT_CHARACTERS] for line in "".join(texts).splitlines() if line.strip()]
    if len(lines) <= count:
        return tuple(lines)
    return tuple(lines[i * len(lines) // count] for i in range(count))


def parity_tokens(tokenizer: Tokenizer, prompts: tuple[str, ...], context: int) -> int:
    """PARITY_TOKENS, or fewer when the longest prompt plus its continuation would not fit the context."""
    longest = max(len(tokenizer.encode(p).ids) for p in prompts)
    return max(1, min(PARITY_TOKENS, context - longest - 1))


class OrtDecoder:
    """Greedy decoding on the exported graph with its KV cache, for the export checks and nothing else
    (the service has its own engine; training must not import it)."""

    def __init__(self, path: Path, gpt: GPTConfig):
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.gpt = gpt

    def greedy(self, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:
        """Left-padded batch: prefill, then one token per step for every row."""
        gpt, rows, width = self.gpt, len(prompts), max(map(len, prompts))
        ids = np.zeros((rows, width), np.int64)
        positions = np.zeros((rows, width), np.int64)
        mask = np.zeros((rows, width), np.int64)
        for r, prompt in enumerate(prompts):
            ids[r, width - len(prompt) :] = prompt
            positions[r, width - len(prompt) :] = np.arange(len(prompt))
            mask[r, width - len(prompt) :] = 1
        past = [np.zeros((rows, gpt.n_heads, 0, gpt.head_dim), np.float32) for _ in past_names(gpt.n_layers)]
        next_positions = np.array([len(p) for p in prompts], np.int64)[:, None]  # (B, 1)
        generated: list[list[int]] = [[] for _ in prompts]
        for _ in range(new_tokens):
            feeds = {INPUT_IDS: ids, POSITION_IDS: positions, ATTENTION_MASK: mask}
            feeds.update(zip(past_names(gpt.n_layers), past, strict=True))
            logits, *past = self.session.run(None, feeds)
            chosen = logits[:, -1].argmax(-1)  # (B,)
            for r in range(rows):
                generated[r].append(int(chosen[r]))
            ids, positions = chosen[:, None].astype(np.int64), next_positions
            next_positions = next_positions + 1
            mask = np.concatenate([mask, np.ones((rows, 1), np.int64)], axis=1)  # (B, P+1)
        return generated


@torch.no_grad()
def torch_greedy(model: TinyGPT, prompt: list[int], new_tokens: int) -> list[int]:
    """The reference: recompute the whole context for every token, no cache at all."""
    idx = torch.tensor([prompt])
    for _ in range(new_tokens):
        chosen = model(idx)[0, -1].argmax()
        idx = torch.cat([idx, chosen.view(1, 1)], dim=1)
    return idx[0, len(prompt) :].tolist()


def check_decoding(
    model: TinyGPT,
    tokenizer: Tokenizer,
    onnx_path: Path,
    record: Path,
    prompts_text: tuple[str, ...],
    new_tokens: int,
) -> None:
    """Greedy tokens: ORT with cache == torch without cache, and batched == alone; else ExportError."""
    model.eval()
    prompts = [tokenizer.encode(text).ids for text in prompts_text]
    decoder = OrtDecoder(onnx_path, model.config)
    reference = [torch_greedy(model, p, new_tokens) for p in prompts]
    alone = [decoder.greedy([p], new_tokens)[0] for p in prompts]
    together = decoder.greedy(prompts, new_tokens)
    for text, want, solo, batched in zip(prompts_text, reference, alone, together, strict=True):
        if solo != want:
            first = next(i for i, (a, b) in enumerate(zip(solo, want, strict=True)) if a != b)
            raise ExportError(
                f"prompt {text!r}: ONNX greedy decoding with the cache differs from torch at token {first}"
            )
        if batched != solo:
            raise ExportError(f"prompt {text!r}: decoding in a padded batch differs from decoding alone")
    entries = [
        {"prompt": t, "text": tokenizer.decode(w), "tokens": w} for t, w in zip(prompts_text, reference, strict=True)
    ]
    check = (
        f"greedy {new_tokens} tokens: ONNX Runtime with KV cache == torch without cache, "
        "and left-padded batch == each prompt alone"
    )
    # One prompt per line, so the token lists stay readable instead of one number per line.
    body = ",\n".join("    " + json.dumps(e, ensure_ascii=False) for e in entries)
    text = f'{{\n  "check": {json.dumps(check)},\n  "passed": true,\n  "prompts": [\n{body}\n  ]\n}}\n'
    record.write_text(text, encoding="utf-8")
