"""Tables from CSV, TSV or JSONL files: strict UTF-8, one record per row, every problem located.

The format follows the file's extension (`.csv`; `.tsv`/`.tab`; `.jsonl`/`.ndjson`). Values are kept
as strings (JSON numbers and booleans written as text, JSON null as missing) so every task applies one
rule to every format; `line` is the 1-based line a row starts on, for error messages.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from training.fit.errors import DataError, first_few

DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
JSON_LINES = (".jsonl", ".ndjson")
TABLE_SUFFIXES = (*DELIMITERS, *JSON_LINES)


@dataclass(frozen=True)
class Table:
    path: Path
    columns: list[str]
    cells: dict[str, list[str | None]]
    """Column name -> one value per row; None = absent (JSON null or a key missing from the object)."""
    lines: list[int]
    """Row -> the line it starts on."""

    def __len__(self) -> int:
        return len(self.lines)

    def column(self, name: str, role: str) -> list[str | None]:
        """The values of `name`, or a DataError listing the columns that exist."""
        if name not in self.cells:
            raise DataError(f"{self.path}: no {role} column {name!r}; the columns are: {', '.join(self.columns)}")
        return self.cells[name]

    def where(self, row: int) -> str:
        return f"{self.path}:{self.lines[row]}"


def read_text(path: Path) -> str:
    """The file as text; non-UTF-8 bytes are a DataError naming the byte offset and line."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}: not UTF-8 at byte offset {exc.start} (line {line}): {raw[exc.start : exc.start + 4]!r}; "
            "re-save the file as UTF-8"
        ) from None


def _json_cell(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)


def _read_jsonl(path: Path, text: str) -> Table:
    records: list[dict[str, object]] = []
    lines: list[int] = []
    columns: dict[str, None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number}: expected a JSON object per line, got {type(record).__name__}")
        records.append(record)
        lines.append(number)
        columns.update(dict.fromkeys(record))
    names = list(columns)
    cells = {name: [_json_cell(r.get(name)) for r in records] for name in names}
    return Table(path, names, cells, lines)


def _read_delimited(path: Path, text: str, delimiter: str) -> Table:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{path}: the file is empty; expected a header line of column names") from None
    names = [h.strip() for h in header]
    blank = [str(i + 1) for i, n in enumerate(names) if not n]
    if blank:
        raise DataError(f"{path}:1: header column(s) {', '.join(blank)} have no name")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise DataError(f"{path}:1: duplicate column name(s): {', '.join(duplicated)}")
    columns: list[list[str | None]] = [[] for _ in names]
    lines: list[int] = []
    wrong: list[str] = []
    start = reader.line_num + 1
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                start = reader.line_num + 1
                continue
            if len(row) != len(names):
                wrong.append(f"line {start} has {len(row)} fields")
            else:
                for values, value in zip(columns, row, strict=True):
                    values.append(value)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: {exc}") from None
    if wrong:
        raise DataError(f"{path}: expected {len(names)} fields per line (the header's): {first_few(wrong)}")
    return Table(path, names, dict(zip(names, columns, strict=True)), lines)


def read_table(path: Path) -> Table:
    """Read a CSV/TSV/JSONL file; a DataError for an unknown extension, bad encoding, or ragged rows."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{path}: unknown table format {suffix!r}; use one of {', '.join(TABLE_SUFFIXES)}")
    text = read_text(path)
    table = _read_jsonl(path, text) if suffix in JSON_LINES else _read_delimited(path, text, DELIMITERS[suffix])
    if len(table) == 0:
        raise DataError(f"{path}: no data rows")
    return table


MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
"""Cell texts read as missing, compared after stripping spaces and lower-casing."""


def is_missing(value: str | None) -> bool:
    return value is None or value.strip().lower() in MISSING_TOKENS
