"""scikit-learn's bundled handwritten digits (1,797 images, 8x8, values 0..16), split once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from service.schema.config import ImagePreprocessing
from training.data.splits import describe_split, stratified_split
from training.fit.images import DecodedImages

PIXEL_MAX = 16.0
"""Digits pixels are integers 0..16 (bright ink on a dark background); models normalise inside the graph."""
LABELS = [str(d) for d in range(10)]
SOURCE = "sklearn.datasets.load_digits"
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


@cache
def decoded_digits() -> DecodedImages:
    """The digits as `fit`'s image tasks hold a user's decoded folder (uint8 0..16, the served preprocessing
    IMAGE), each item's part of the fixed split as its split value ("train"/"val"/"test")."""
    bunch = load_digits()
    y = bunch.target.astype(np.int64)
    return DecodedImages(
        pixels=bunch.images.astype(np.uint8)[:, None, :, :],  # (N, 1, 8, 8), integers 0..16
        labels=[LABELS[d] for d in y],
        files=[Path(f"{SOURCE}[{i}]") for i in range(len(y))],
        skipped=[],
        settings=IMAGE,
        layout=f"scikit-learn's bundled handwritten digits (8x8 scans, bright ink on dark; split column = the fixed "
        f"split of training/data/splits.py: {describe_split()})",
        split_values=stratified_split(y).parts(),
    )
