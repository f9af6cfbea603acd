"""Rows of named values -> the tabular feature vector of `service.schema.tabular`, as training built it.

A row is a JSON object by column name (every column present, no other key) or an array in the config's
column order. Each value is read the way `nnserve-train fit` reads a table cell, so a row sent here
and the same row in the training CSV or JSONL become the same vector:

- a JSON value becomes the cell's text as the JSONL reader writes it: a string as it is, a number as
  Python writes it (`3` -> "3", `3.0` -> "3.0", `1e5` -> "100000.0"), `true`/`false` -> "true"/"false";
- missing: `null`, or a text that is empty or one of MISSING_TOKENS after trimming and lower-casing;
- numeric column: the text parsed as a float (NaN when missing; the graph imputes it); anything else,
  infinity, or a value beyond FP32 is refused, as training refuses it;
- categorical column: the trimmed text compared, as a string, with the training categories; a value
  unseen in training, or missing, takes the unknown slot.

Absent and unknown keys are errors rather than missing values: a misspelt column name must not be
silently imputed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.errors import InvalidInput
from service.schema.tabular import TabularPreprocessing

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
"""Cell texts read as missing, compared after trimming and lower-casing (the training reader's set)."""
FP32_MAX = float(np.finfo(np.float32).max)
SHOWN_COLUMNS = 12
"""Error messages list at most this many column names."""


def cell_text(value: Any) -> str | None:
    """A JSON value as the text of a table cell (None: missing); the training JSONL reader's rule."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    raise TypeError(type(value).__name__)


def is_missing(text: str | None) -> bool:
    return text is None or text.strip().lower() in MISSING_TOKENS


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _names(names: Sequence[str]) -> str:
    listed = ", ".join(_shown(n) for n in names[:SHOWN_COLUMNS])
    return listed + (f", ... ({len(names)} in all)" if len(names) > SHOWN_COLUMNS else "")


@dataclass(frozen=True)
class _Column:
    name: str
    numeric: bool
    offset: int
    """First slot of this column in the feature vector."""
    slots: dict[str, int]
    """Categorical only: category -> slot, relative to `offset`; the unknown slot is len(slots)."""


class RowEncoder:
    """Turns instances into the (N, n_features) FP32 feature matrix; 400s name the row and column."""

    def __init__(self, schema: TabularPreprocessing) -> None:
        self.schema = schema
        self.n_features = schema.n_features
        columns: list[_Column] = []
        offset = 0
        for column in schema.columns:
            slots = {category: k for k, category in enumerate(column.categories)}
            columns.append(_Column(column.name, column.kind == "numeric", offset, slots))
            offset += column.width
        self.columns = columns
        self.names = [c.name for c in columns]
        self._known = frozenset(self.names)

    def encode(self, rows: Sequence[Any], where: Sequence[str]) -> NDArray[np.float32]:
        out = np.zeros((len(rows), self.n_features), dtype=np.float32)
        for r, (row, label) in enumerate(zip(rows, where, strict=True)):
            values, places = self._values(row, label)
            target = out[r]
            for column, value, place in zip(self.columns, values, places, strict=True):
                if column.numeric:
                    target[column.offset] = self._number(value, place)
                else:
                    target[column.offset + self._slot(column, value, place)] = 1.0
        return out

    def _values(self, row: Any, where: str) -> tuple[list[Any], list[str]]:
        """The row's values in column order, with how errors name each one."""
        if isinstance(row, dict):
            if row.keys() != self._known:
                unknown = [k for k in row if k not in self._known]
                if unknown:
                    raise InvalidInput(
                        f"{where}: unknown column(s) {_names(unknown)}; the model's columns are {_names(self.names)}"
                    )
                missing = [n for n in self.names if n not in row]
                raise InvalidInput(
                    f'{where}: missing column(s) {_names(missing)}; send every column (null or "" for a missing value)'
                )
            return [row[n] for n in self.names], [f"{where}.{n}" for n in self.names]
        if isinstance(row, list):
            if len(row) != len(self.names):
                raise InvalidInput(
                    f"{where}: {len(row)} values, the model has {len(self.names)} columns, in this order: "
                    f"{_names(self.names)}"
                )
            return row, [f"{where}[{i}] ({n!r})" for i, n in enumerate(self.names)]
        raise InvalidInput(
            f"{where}: expected an object of column values or an array in column order, got {type(row).__name__}"
        )

    @staticmethod
    def _number(value: Any, where: str) -> float:
        if value is None:
            return math.nan
        if isinstance(value, str):
            if is_missing(value):
                return math.nan
            try:
                number = float(value)
            except ValueError:
                raise InvalidInput(
                    f"{where}: {_shown(value)} is not a number (numeric column; send a number, a numeric "
                    'string, or null or "" for a missing value)'
                ) from None
        elif isinstance(value, int | float) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
        else:
            raise InvalidInput(
                f"{where}: expected a number for this numeric column, got {type(value).__name__} {_shown(str(value))}"
            )
        if not math.isfinite(number) or abs(number) > FP32_MAX:
            raise InvalidInput(f"{where}: {_shown(str(value))} is not a finite FP32 number")
        return number

    @staticmethod
    def _slot(column: _Column, value: Any, where: str) -> int:
        try:
            text = cell_text(value)
        except TypeError as exc:
            raise InvalidInput(f"{where}: expected a string for this categorical column, got {exc}") from None
        if is_missing(text):
            return len(column.slots)
        assert text is not None
        return column.slots.get(text.strip(), len(column.slots))
