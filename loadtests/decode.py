"""Greedy KV-cache decoding straight on ONNX Runtime: the benchmark's raw generation reference.

It is the least work a server could do per generated token (one `session.run` per step, no sampling,
no batching of unrelated requests), so the service's generation throughput is compared against it.
The exported graph takes input ids, position ids, an attention mask and one key and value cache per
layer (B, H, P, D), and returns logits (B, T, V) plus the grown caches; names come from the model's
`generation` config section.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.schema.config import GenerationSettings


class GreedyDecoder:
    def __init__(self, session: Any, settings: GenerationSettings) -> None:
        self._session = session
        self._settings = settings
        layers = range(settings.n_layers)
        self._past_names = [
            name
            for i in layers
            for name in (
                settings.past_key_template.format(layer=i),
                settings.past_value_template.format(layer=i),
            )
        ]
        self._present_names = [
            name
            for i in layers
            for name in (
                settings.present_key_template.format(layer=i),
                settings.present_value_template.format(layer=i),
            )
        ]
        self._outputs = [settings.logits, *self._present_names]
        graph_inputs = {i.name for i in session.get_inputs()}
        self._mask = settings.attention_mask if settings.attention_mask in graph_inputs else None

    def generate(self, prompt_ids: np.ndarray, max_tokens: int) -> np.ndarray:
        """Greedy continuation of same-length prompts (B, T) int64 -> tokens (B, n), n <= max_tokens.

        Stops when every sequence has produced the end-of-text token or the context is full.
        """
        s = self._settings
        batch, length = prompt_ids.shape
        empty = np.zeros((batch, s.n_heads, 0, s.head_dim), dtype=np.float32)  # (B, H, 0, D)
        past = dict.fromkeys(self._past_names, empty)
        input_ids = prompt_ids
        positions = np.broadcast_to(np.arange(length, dtype=np.int64), (batch, length))  # (B, T)
        generated: list[np.ndarray] = []
        finished = np.zeros(batch, dtype=bool)
        for _ in range(max_tokens):
            feeds = {s.input_ids: input_ids, s.position_ids: positions, **past}
            if self._mask:
                seen = positions[0, -1] + 1
                feeds[self._mask] = np.ones((batch, seen), dtype=np.int64)  # (B, P+T)
            logits, *present = self._session.run(self._outputs, feeds)
            token = logits[:, -1, :].argmax(axis=-1).astype(np.int64)  # (B,)
            generated.append(token)
            finished |= token == s.eos_token_id
            next_position = positions[0, -1] + 1
            if finished.all() or next_position >= s.context_length:
                break
            past = dict(zip(self._past_names, present, strict=True))
            input_ids = token[:, None]  # (B, 1)
            positions = np.full((batch, 1), next_position, dtype=np.int64)  # (B, 1)
        return np.stack(generated, axis=1)  # (B, n)
