"""Perplexity of a token stream through the exported graph, and the bigram baseline it is compared with.

The scoring feeds whole windows from position 0 with an empty cache, named as the config's generation
section names them: the form in which a client can score text through the server's v2 `/infer` and get
the same figure (tests/training/test_fit_generation_serving.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnxruntime as ort

from service.schema.config import GenerationSettings
from training.fit.windows import stream_windows

EVALUATION_BATCH = 16
"""Windows per ONNX Runtime call when scoring a stream."""


def window_feeds(inputs: np.ndarray, gpt: GenerationSettings) -> dict[str, np.ndarray]:
    """The graph's inputs for whole windows (B, T) from position 0 with an empty cache."""
    feeds = {
        gpt.input_ids: inputs,
        gpt.position_ids: np.broadcast_to(np.arange(inputs.shape[1]), inputs.shape).copy(),
        gpt.attention_mask: np.ones_like(inputs),
    }
    empty = np.zeros((len(inputs), gpt.n_heads, 0, gpt.head_dim), np.float32)
    for layer in range(gpt.n_layers):
        feeds[gpt.past_key_template.format(layer=layer)] = empty
        feeds[gpt.past_value_template.format(layer=layer)] = empty
    return feeds


def summed_nll(logits: np.ndarray, targets: np.ndarray) -> float:
    """Total next-token cross-entropy (nats) of targets (B, T) under logits (B, T, V), computed stably."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=-1))  # (B, T)
    picked = np.take_along_axis(shifted, targets[..., None], axis=-1)[..., 0]  # (B, T)
    return float((log_norm - picked).sum())


def perplexity_metrics(session: ort.InferenceSession, tokens: np.ndarray, gpt: GenerationSettings) -> dict[str, float]:
    """Mean NLL and perplexity of a token stream, in non-overlapping windows of the context length."""
    windows = stream_windows(tokens, gpt.context_length)  # (N, T+1)
    total, count = 0.0, 0
    for start in range(0, len(windows), EVALUATION_BATCH):
        chunk = windows[start : start + EVALUATION_BATCH]
        x, y = chunk[:, :-1], chunk[:, 1:]  # (B, T)
        (logits,) = session.run([gpt.logits], window_feeds(x, gpt))  # (B, T, V)
        total += summed_nll(logits, y)
        count += y.size
    loss = total / count
    return {"loss": loss, "perplexity": math.exp(loss), "tokens": count}


def bigram_perplexity(train: np.ndarray, validation: np.ndarray, test: np.ndarray, vocab: int) -> dict[str, Any]:
    """Add-k smoothed bigram model on the same tokens; k chosen on validation from 1, 0.1, 0.01."""
    pairs = train[:-1] * vocab + train[1:]
    codes, counts = np.unique(pairs, return_counts=True)
    context_counts = np.bincount(train[:-1], minlength=vocab).astype(np.float64)

    def loss(tokens: np.ndarray, k: float) -> float:
        query = tokens[:-1] * vocab + tokens[1:]
        at = np.clip(np.searchsorted(codes, query), 0, len(codes) - 1)
        pair = np.where(codes[at] == query, counts[at], 0).astype(np.float64)
        p = (pair + k) / (context_counts[tokens[:-1]] + k * vocab)
        return float(-np.log(p).mean())

    k = min((1.0, 0.1, 0.01), key=lambda value: loss(validation, value))
    return {"name": f"bigram, add-{k:g} smoothing", "test_perplexity": math.exp(loss(test, k))}
