"""Train/validation/test split of the user's data: stratified by label and seeded, or read from a column.

Every class keeps its share in each part. Rows whose content (text, decoded pixels, feature values)
also occurs in an earlier part are dropped from the later part and counted, so no test item is a
training item in disguise. The split seed (`--split-seed`) is independent of `--seed`: retraining with
another seed never changes what is held out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from training.fit.errors import DataError, first_few
from training.fit.options import FitOptions

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    """Sorted row indices of each part."""
    duplicates_dropped: int
    rule: str

    def describe(self) -> str:
        return (
            f"{self.rule}; {len(self.train)} train / {len(self.val)} validation / {len(self.test)} test"
            f"; {self.duplicates_dropped} validation/test item(s) dropped as duplicates of earlier parts"
        )


def min_per_class(options: FitOptions) -> int:
    """Examples a class needs so each part expects at least one of them."""
    return max(3, math.ceil(1.0 / min(options.val_fraction, options.test_fraction) - 1e-9))


def _check_fractions(options: FitOptions) -> None:
    v, t = options.val_fraction, options.test_fraction
    if not (0.0 < v < 1.0 and 0.0 < t < 1.0 and v + t < 1.0):
        raise DataError(f"--val-fraction {v} and --test-fraction {t} must be in (0, 1) with a sum below 1")


def _from_column(values: Sequence[str | None], where: Callable[[int], str], column: str) -> list[np.ndarray]:
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    bad: list[str] = []
    for i, value in enumerate(values):
        part = SPLIT_NAMES.get((value or "").strip().lower())
        if part is None:
            bad.append(f"{where(i)}: {value!r}")
        else:
            parts[part].append(i)
    if bad:
        raise DataError(f"split column {column!r} must hold train, val or test: {first_few(bad)}")
    return [np.asarray(parts[p], dtype=np.int64) for p in ("train", "val", "test")]


def _stratified(labels: Sequence[str] | None, n: int, options: FitOptions) -> list[np.ndarray]:
    rng = np.random.default_rng(options.split_seed)
    groups: dict[str, list[int]] = {}
    for i in range(n):
        groups.setdefault(labels[i] if labels is not None else "", []).append(i)
    needed = min_per_class(options)
    small = [
        f"{label!r} has {len(rows)}" if labels is not None else f"has {len(rows)} item(s)"
        for label, rows in sorted(groups.items())
        if len(rows) < needed
    ]
    if small:
        what = "class(es)" if labels is not None else "the data"
        raise DataError(
            f"too few examples for the split (validation {options.val_fraction}, test {options.test_fraction}): "
            f"{what} {first_few(small)}; each needs at least {needed}. Add examples or use --split-column"
        )
    train: list[int] = []
    val: list[int] = []
    test: list[int] = []
    for _, rows in sorted(groups.items()):
        order = rng.permutation(np.asarray(rows))
        n_test = max(1, round(len(rows) * options.test_fraction))
        n_val = max(1, round(len(rows) * options.val_fraction))
        test += order[:n_test].tolist()
        val += order[n_test : n_test + n_val].tolist()
        train += order[n_test + n_val :].tolist()
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in (train, val, test)]


def split_rows(
    n: int,
    options: FitOptions,
    *,
    labels: Sequence[str] | None,
    keys: Sequence[Hashable],
    split_values: Sequence[str | None] | None = None,
    where: Callable[[int], str] = str,
) -> Split:
    """Split `n` rows; `keys[i]` identifies row i's content for dropping cross-part duplicates."""
    _check_fractions(options)
    if split_values is not None:
        parts = _from_column(split_values, where, options.split_column or "split")
        rule = f"given by the split column {options.split_column!r}"
    else:
        parts = _stratified(labels, n, options)
        kind = "stratified by label" if labels is not None else "random"
        rule = (
            f"{kind}, {1 - options.val_fraction - options.test_fraction:.0%} train / "
            f"{options.val_fraction:.0%} validation / {options.test_fraction:.0%} test, split seed "
            f"{options.split_seed}"
        )
    seen: set[Hashable] = set()
    kept: list[np.ndarray] = []
    dropped = 0
    for index, part in enumerate(parts):
        if index == 0:
            keep = part
        else:
            mask = np.asarray([keys[i] not in seen for i in part], dtype=bool)
            dropped += int((~mask).sum())
            keep = part[mask]
        seen.update(keys[i] for i in part)
        kept.append(keep)
    for name, part in zip(("training", "validation", "test"), kept, strict=True):
        if len(part) == 0:
            raise DataError(f"the {name} part of the split is empty ({rule}); add data or change the split")
    return Split(kept[0], kept[1], kept[2], dropped, rule)
