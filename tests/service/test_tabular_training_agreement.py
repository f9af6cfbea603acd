"""Train/serve agreement of the tabular feature vector: the server's row parsing (`service.tasks.tabular`)
gives exactly the vector `nnserve-train fit` builds from the same table cells, for rows read from a CSV
(every value a string) and from JSONL (numbers, booleans and nulls), which is how a client sends them.

Skipped where the training package has no `fit` tables (it arrives with issue 13's `fit`).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from testkit.task_models import SCHEMA

from service.tasks.tabular import RowEncoder

tables = pytest.importorskip("training.fit.tables", reason="training.fit (nnserve-train fit) is not in this tree")
tabular = pytest.importorskip("training.fit.tabular", reason="training.fit (nnserve-train fit) is not in this tree")

CSV_ROWS = [
    ["age", "colour", "income", "code"],
    ["30", "red", "52000", "3"],
    ["", "purple", "NA", "7.5"],
    [" 61.5 ", " blue ", "?", "true"],
    ["1e2", "n/a", "15000.0", "3.0"],
    ["-3", "None", "nan", " 7.5 "],
    ["0", "Green", "1_000", "TRUE"],
]
JSON_ROWS: list[dict[str, Any]] = [
    {"age": 30, "colour": "red", "income": 52000, "code": 3},
    {"age": None, "colour": "purple", "income": "", "code": 7.5},
    {"age": 61.5, "colour": "blue", "income": None, "code": True},
    {"age": 1e2, "colour": None, "income": 15000.0, "code": 3.0},
    {"age": -3, "colour": "null", "income": "NaN", "code": "7.5"},
]


def _same(server: np.ndarray, training: np.ndarray) -> None:
    assert server.shape == training.shape
    np.testing.assert_array_equal(np.isnan(server), np.isnan(training))
    np.testing.assert_array_equal(np.nan_to_num(server), np.nan_to_num(training))


def test_server_rows_equal_training_features_from_csv(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(CSV_ROWS)
    table = tables.read_table(path)
    training = tabular.features(table, SCHEMA, np.arange(len(table)))
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    server = RowEncoder(SCHEMA).encode(rows, [f"row {i}" for i in range(len(rows))])
    _same(server, training)


def test_server_rows_equal_training_features_from_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in JSON_ROWS), encoding="utf-8")
    table = tables.read_table(path)
    training = tabular.features(table, SCHEMA, np.arange(len(table)))
    server = RowEncoder(SCHEMA).encode(JSON_ROWS, [f"row {i}" for i in range(len(JSON_ROWS))])
    _same(server, training)
