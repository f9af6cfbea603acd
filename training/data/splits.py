"""The train/validation/test split shared by every classifier and the autoencoder, defined in one place.

The split seed is fixed and independent of `--seed`: retraining with another seed changes the weights,
never which examples are held out, so test figures stay comparable across runs and families.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

TEST_FRACTION = 0.20
"""Share of all examples held out for the final test figures (never seen during training or selection)."""
VAL_FRACTION = 0.15
"""Share of all examples used for early stopping, checkpoint choice and threshold calibration."""
SPLIT_SEED = 20240
"""Seed of the shuffles behind the split; changing it changes every held-out figure."""


@dataclass(frozen=True)
class SplitIndices:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def parts(self) -> list[str]:
        """Each item's part, "train"/"val"/"test": the split as `fit`'s split column holds it."""
        names = [""] * (len(self.train) + len(self.val) + len(self.test))
        for name, rows in (("train", self.train), ("val", self.val), ("test", self.test)):
            for i in rows:
                names[i] = name
        return names


def stratified_split(labels: np.ndarray) -> SplitIndices:
    """Indices for a split that keeps each class's share in every part (spam is only ~13%)."""
    index = np.arange(len(labels))
    rest, test = train_test_split(index, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED)
    train, val = train_test_split(
        rest, test_size=VAL_FRACTION / (1.0 - TEST_FRACTION), stratify=labels[rest], random_state=SPLIT_SEED
    )
    return SplitIndices(train=np.sort(train), val=np.sort(val), test=np.sort(test))


def describe_split() -> str:
    """One sentence for cards and docs, so they cannot drift from the constants above."""
    train = 1.0 - TEST_FRACTION - VAL_FRACTION
    return (
        f"stratified by label, {train:.0%} train / {VAL_FRACTION:.0%} validation / {TEST_FRACTION:.0%} test, "
        f"split seed {SPLIT_SEED} (fixed, independent of --seed)"
    )
