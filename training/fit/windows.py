"""Token streams cut into next-token windows: random ones to train on, every one in order to score."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from training.loop import StepOutput


@dataclass
class RandomWindows:
    """`steps` batches of (input, target) windows at random offsets in a stream (nanoGPT's get_batch)."""

    tokens: torch.Tensor
    context: int
    batch: int
    steps: int
    generator: torch.Generator

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        highest_start = len(self.tokens) - self.context - 1
        for _ in range(self.steps):
            starts = torch.randint(0, highest_start, (self.batch,), generator=self.generator).tolist()
            windows = torch.stack([self.tokens[s : s + self.context + 1] for s in starts])  # (B, T+1)
            yield windows[:, :-1], windows[:, 1:]


def stream_windows(tokens: np.ndarray, context: int) -> np.ndarray:
    """Non-overlapping windows of context+1 tokens (input plus shifted target), every token predicted once."""
    n = (len(tokens) - 1) // context
    index = np.arange(n)[:, None] * context + np.arange(context + 1)[None, :]  # (N, T+1)
    return tokens[index]


class SequentialWindows:
    """Every non-overlapping window of a stream in order: a deterministic validation pass."""

    def __init__(self, tokens: np.ndarray, context: int, batch: int):
        self.windows = torch.from_numpy(stream_windows(tokens, context))
        self.batch = batch

    def __len__(self) -> int:
        return math.ceil(len(self.windows) / self.batch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self.windows), self.batch):
            chunk = self.windows[start : start + self.batch]  # (B, T+1)
            yield chunk[:, :-1], chunk[:, 1:]


def next_token_step(net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> StepOutput:
    """Mean next-token cross-entropy of a batch of windows."""
    x, y = batch  # (B, T) each
    logits = net(x)  # (B, T, V)
    return StepOutput(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)), y.numel())
