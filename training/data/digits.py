"""scikit-learn's bundled handwritten digits (1,797 images, 8x8, values 0..16), split once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from sklearn.datasets import load_digits

from service.schema.config import ImagePreprocessing
from training.data.splits import stratified_split

PIXEL_MAX = 16.0
"""Digits pixels are integers 0..16 (bright ink on a dark background); models normalise inside the graph."""
LABELS = [str(d) for d in range(10)]
IMAGE = ImagePreprocessing(height=8, width=8, channels=1, ink="bright", value_range=(0.0, PIXEL_MAX))
"""How the server turns an upload into model input: 8x8, bright ink on dark, intensities mapped onto 0..16."""


@dataclass(frozen=True)
class Images:
    x: np.ndarray
    """(N, 1, 8, 8) float32, raw values 0..16."""
    y: np.ndarray
    """(N,) int64 digit class."""

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class DigitsSplit:
    train: Images
    val: Images
    test: Images


@cache
def load_digits_split() -> DigitsSplit:
    bunch = load_digits()
    x = bunch.images.astype(np.float32)[:, None, :, :]  # (N, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    split = stratified_split(y)
    return DigitsSplit(*(Images(x[i], y[i]) for i in (split.train, split.val, split.test)))
