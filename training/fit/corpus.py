"""Text corpora for text-generation: one file or a folder of .txt/.md files, split into contiguous parts.

The split is by position, not by random lines: the first share of the characters trains, the next
validates, the last tests (each cut moved to the next line break), so held-out text is unseen prose,
not lines interleaved with training lines. Files are read in sorted path order, strictly as UTF-8.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training.fit.errors import DataError
from training.fit.options import FitOptions
from training.fit.tables import read_text

SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class CorpusParts:
    files: list[Path]
    train: list[str]
    validation: list[str]
    test: list[str]
    """Each part: the pieces of documents that fall in it, in order."""
    characters: int
    rule: str = "by position (train first, then validation, then test)"
    """How the parts were cut, for the card."""


def read_corpus(path: Path) -> tuple[list[Path], list[str]]:
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")
        )
        if not files:
            raise DataError(f"{path}: no {' or '.join(SUFFIXES)} files found")
    elif path.is_file():
        files = [path]
    else:
        raise DataError(f"{path}: no such file or folder")
    texts = [read_text(f) for f in files]
    return files, texts


def _cut(text: str, at: int) -> int:
    newline = text.find("\n", at)
    return len(text) if newline < 0 else newline + 1


def split_corpus(path: Path, options: FitOptions) -> CorpusParts:
    files, texts = read_corpus(path)
    total = sum(len(t) for t in texts)
    if total == 0:
        raise DataError(f"{path}: the corpus is empty")
    bounds = (1.0 - options.val_fraction - options.test_fraction, 1.0 - options.test_fraction)
    parts: list[list[str]] = [[], [], []]
    offset = 0
    limits = [int(b * total) for b in bounds]
    for text in texts:
        start = 0
        for k in range(3):
            end_global = limits[k] if k < 2 else total
            end = len(text) if end_global >= offset + len(text) else max(start, _cut(text, end_global - offset))
            if end > start:
                parts[k].append(text[start:end])
                start = end
        offset += len(text)
    return CorpusParts(files, parts[0], parts[1], parts[2], total)
