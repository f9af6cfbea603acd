"""The tabular transform, learned from the training split, applied half by the server, half in the graph.

The feature vector the server builds follows `service.schema.tabular`: per numeric column the raw
number (NaN when missing), per categorical column one-hot slots plus an unknown slot. `features`
below builds that same vector offline, and `TabularInput` is the exported graph's first layer:
median imputation, a missing indicator per numeric column, standardisation with training mean/std.

Column kinds (decided over all rows, before the split; no statistics are learned there):
- a cell is missing when empty or one of `tables.MISSING_TOKENS` (NA, N/A, NaN, null, None, ?);
- a column is numeric when at least NUMERIC_SHARE (90%) of its non-missing cells parse as finite
  numbers; its other cells are then errors naming the line and column (a typo, not a category);
- any other column is categorical: its categories are the training split's values, the most frequent
  first, at most `--max-categories`; rarer and unseen values share the unknown slot.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from service.schema.tabular import TabularColumn, TabularPreprocessing
from training.export import InputMaker
from training.fit.errors import DataError, first_few
from training.fit.tables import Table, is_missing

NUMERIC_SHARE = 0.9


def parse_number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class TabularTransform:
    schema: TabularPreprocessing
    median: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    """Per numeric column, in schema order, from the training split."""

    def describe(self) -> list[str]:
        out = []
        numeric = [c for c in self.schema.columns if c.kind == "numeric"]
        for column, median, mean, std in zip(numeric, self.median, self.mean, self.std, strict=True):
            out.append(f"`{column.name}`: numeric, median {median:.4g}, mean {mean:.4g}, std {std:.4g}")
        for column in self.schema.columns:
            if column.kind == "categorical":
                out.append(f"`{column.name}`: categorical, {len(column.categories)} categories + unknown")
        return out


def column_kinds(table: Table, columns: Sequence[str]) -> dict[str, str]:
    """numeric or categorical per column (rule in the module docstring); DataError on stray text."""
    kinds: dict[str, str] = {}
    stray: list[str] = []
    for name in columns:
        values = table.column(name, "feature")
        present = [(i, v) for i, v in enumerate(values) if not is_missing(v)]
        bad = [(i, v) for i, v in present if parse_number(str(v)) is None]
        if present and len(bad) <= (1.0 - NUMERIC_SHARE) * len(present):
            kinds[name] = "numeric"
            stray += [f"{table.where(i)} column {name!r}: {v!r} is not a number" for i, v in bad]
        else:
            kinds[name] = "categorical"
    if stray:
        raise DataError(
            f"non-numeric value(s) in numeric column(s) (>= {NUMERIC_SHARE:.0%} of the column parses as "
            f"numbers): {first_few(stray)}; fix them or leave them empty (missing)"
        )
    return kinds


def fit_transform(
    table: Table, columns: Sequence[str], kinds: dict[str, str], train: np.ndarray, max_categories: int
) -> TabularTransform:
    specs: list[TabularColumn] = []
    medians, means, stds = [], [], []
    for name in columns:
        values = table.cells[name]
        if kinds[name] == "numeric":
            numbers = np.asarray(
                [float(values[i]) for i in train if not is_missing(values[i])],
                dtype=np.float64,
            )
            if len(numbers) == 0:
                medians.append(0.0)
                means.append(0.0)
                stds.append(1.0)
            else:
                median = float(np.median(numbers))
                medians.append(median)
                means.append(float(numbers.mean()))
                std = float(numbers.std())
                stds.append(std if std > 1e-12 else 1.0)
            specs.append(TabularColumn(name=name, kind="numeric"))
        else:
            counts = Counter(str(values[i]).strip() for i in train if not is_missing(values[i]))
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_categories]
            categories = [value for value, _ in ranked] or ["(none)"]
            specs.append(TabularColumn(name=name, kind="categorical", categories=categories))
    return TabularTransform(
        schema=TabularPreprocessing(columns=specs),
        median=np.asarray(medians, dtype=np.float32),
        mean=np.asarray(means, dtype=np.float32),
        std=np.asarray(stds, dtype=np.float32),
    )


def features(table: Table, schema: TabularPreprocessing, rows: np.ndarray) -> np.ndarray:
    """(len(rows), n_features) float32, exactly the vector the server builds (service.schema.tabular)."""
    out = np.zeros((len(rows), schema.n_features), dtype=np.float32)
    offset = 0
    for column in schema.columns:
        values = table.cells[column.name]
        if column.kind == "numeric":
            out[:, offset] = [np.nan if is_missing(values[i]) else float(values[i]) for i in rows]
        else:
            slots = {c: k for k, c in enumerate(column.categories)}
            unknown = len(column.categories)
            for r, i in enumerate(rows):
                value = values[i]
                slot = unknown if is_missing(value) else slots.get(str(value).strip(), unknown)
                out[r, offset + slot] = 1.0
        offset += column.width
    return out


def row_keys(table: Table, columns: Sequence[str]) -> list[tuple[str, ...]]:
    """Each row's feature values, normalised, for dropping rows duplicated across splits."""
    cells = [table.cells[c] for c in columns]
    return [tuple("" if is_missing(col[i]) else str(col[i]).strip() for col in cells) for i in range(len(table))]


class TabularInput(nn.Module):
    """The exported graph's first layer: NaN -> training median, missing indicators, standardisation.

    Output per row: standardised numeric values, then one 0/1 missing indicator per numeric column,
    then the categorical one-hot slots unchanged. IsNaN and Where are plain ONNX operators (opset 9+).
    """

    def __init__(self, transform: TabularTransform) -> None:
        super().__init__()
        numeric: list[int] = []
        categorical: list[int] = []
        offset = 0
        for column in transform.schema.columns:
            target = numeric if column.kind == "numeric" else categorical
            target += range(offset, offset + column.width)
            offset += column.width
        self.n_numeric, self.n_categorical = len(numeric), len(categorical)
        self.register_buffer("numeric", torch.tensor(numeric, dtype=torch.long))
        self.register_buffer("categorical", torch.tensor(categorical, dtype=torch.long))
        self.register_buffer("median", torch.from_numpy(transform.median.copy()))
        self.register_buffer("mean", torch.from_numpy(transform.mean.copy()))
        self.register_buffer("std", torch.from_numpy(transform.std.copy()))

    @property
    def width(self) -> int:
        return 2 * self.n_numeric + self.n_categorical

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.n_numeric:
            raw = features.index_select(1, self.numeric)  # (B, n_numeric)
            missing = torch.isnan(raw)
            filled = torch.where(missing, self.median, raw)
            parts += [(filled - self.mean) / self.std, missing.to(features.dtype)]
        if self.n_categorical:
            parts.append(features.index_select(1, self.categorical))  # (B, slots)
        return torch.cat(parts, dim=1)


def random_features(schema: TabularPreprocessing, transform: TabularTransform) -> InputMaker:
    """InputMaker for the parity check: plausible raw numbers with ~20% NaN, random one-hot slots."""

    def make(batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        out = torch.zeros(batch, schema.n_features)
        offset, k = 0, 0
        for column in schema.columns:
            if column.kind == "numeric":
                values = torch.randn(batch, generator=generator) * float(transform.std[k]) + float(transform.mean[k])
                holes = torch.rand(batch, generator=generator) < 0.2
                out[:, offset] = torch.where(holes, torch.tensor(float("nan")), values)
                k += 1
            else:
                slot = torch.randint(0, column.width, (batch,), generator=generator)
                out[torch.arange(batch), offset + slot] = 1.0
            offset += column.width
        return {schema.input: out}

    return make
