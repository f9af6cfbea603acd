"""The decode batch's key/value cache: one array per graph input, rows = sequences, right-aligned.

Every row keeps its tokens contiguous at the right end of the key axis; shorter rows are padded on the
left and masked out by `attention_mask`. New tokens are appended at the right for all rows at once,
so joining, leaving and trimming are the only reshuffles. The exported graph (see
`training/models/tiny_gpt.py`) is built so that ONNX Runtime gives a row bit-identical logits
whatever its left padding and its neighbours, which is what makes this layout exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class KVCache:
    past: list[np.ndarray]
    """Per past input of the graph, in its order: (rows, heads, width, head_dim) float32."""
    mask: np.ndarray
    """(rows, width) int64: 1 where a row holds a real token."""

    @property
    def rows(self) -> int:
        return int(self.mask.shape[0])

    @property
    def width(self) -> int:
        return int(self.mask.shape[1])

    @classmethod
    def empty(cls, rows: int, n_inputs: int, heads: int, head_dim: int) -> KVCache:
        past = [np.zeros((rows, heads, 0, head_dim), np.float32) for _ in range(n_inputs)]
        return cls(past=past, mask=np.zeros((rows, 0), np.int64))

    def extended(self, present: Sequence[np.ndarray], new_mask: np.ndarray) -> KVCache:
        """The cache after a run: the graph's present outputs, mask grown by the tokens just fed."""
        return KVCache(past=list(present), mask=np.concatenate([self.mask, new_mask], axis=1))

    def select(self, rows: Sequence[int]) -> KVCache:
        """Only `rows`, in that order, with the columns no remaining row uses trimmed off the left."""
        index = np.asarray(rows, dtype=np.int64)
        mask = self.mask[index]
        used = np.flatnonzero(mask.any(axis=0))
        start = int(used[0]) if used.size else mask.shape[1]
        return KVCache(
            past=[np.ascontiguousarray(a[index, :, start:]) for a in self.past],
            mask=np.ascontiguousarray(mask[:, start:]),
        )

    def padded_to(self, width: int) -> KVCache:
        """Left-padded with masked zeros to `width` columns."""
        extra = width - self.width
        if extra <= 0:
            return self
        return KVCache(
            past=[np.pad(a, ((0, 0), (0, 0), (extra, 0), (0, 0))) for a in self.past],
            mask=np.pad(self.mask, ((0, 0), (extra, 0))),
        )

    @staticmethod
    def stack(caches: Sequence[KVCache]) -> KVCache:
        """Rows of all `caches`, in order, right-aligned to the widest."""
        width = max(c.width for c in caches)
        aligned = [c.padded_to(width) for c in caches]
        return KVCache(
            past=[np.concatenate(parts, axis=0) for parts in zip(*(c.past for c in aligned), strict=True)],
            mask=np.concatenate([c.mask for c in aligned], axis=0),
        )
