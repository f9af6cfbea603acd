"""Strings -> token arrays with the model's own tokenizer.json, truncated and padded as its config says.

Padding `longest` pads only to the longest sequence of *this request*; the batcher may pad further when
it joins requests, with the same `pad_token_id` and a zero attention mask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from service.errors import InvalidInput
from service.runtime.session import LoadError
from service.schema.config import TextPreprocessing


def find_tokenizer(version_dir: Path, filename: str) -> Path:
    """The version's tokenizer, else one shared by every version in the model directory."""
    for candidate in (version_dir / filename, version_dir.parent / filename):
        if candidate.is_file():
            return candidate
    raise LoadError(f"text.tokenizer: {filename} found neither in {version_dir} nor in {version_dir.parent}")


class TextEncoder:
    def __init__(
        self, settings: TextPreprocessing, version_dir: Path, dtypes: Mapping[str, np.dtype[Any]]
    ) -> None:
        """`dtypes`: numpy dtype of each model input, so the arrays match the graph exactly."""
        path = find_tokenizer(version_dir, settings.tokenizer)
        try:
            self.tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise LoadError(f"{path}: not a Hugging Face tokenizer.json: {exc}") from None
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(settings.max_length)
        self.settings = settings
        self.dtypes = dtypes

    def encode(self, texts: Sequence[Any], where: Sequence[str]) -> dict[str, NDArray[Any]]:
        """{input_ids, attention_mask}: (N, T) with T = max_length or this request's longest sequence."""
        for text, label in zip(texts, where, strict=True):
            if not isinstance(text, str):
                raise InvalidInput(f"{label}: expected a string, got {type(text).__name__}")
        encodings = self.tokenizer.encode_batch(list(texts))
        lengths = [len(e.ids) for e in encodings]
        for length, label in zip(lengths, where, strict=True):
            if length == 0:
                raise InvalidInput(f"{label}: the text has no tokens")
        width = self.settings.max_length if self.settings.padding == "max_length" else max(lengths)
        ids = np.full(
            (len(texts), width), self.settings.pad_token_id, dtype=self.dtypes[self.settings.input_ids]
        )
        mask = np.zeros((len(texts), width), dtype=np.int64)  # (N, T), like ids
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        arrays = {self.settings.input_ids: ids}
        if self.settings.attention_mask is not None:
            arrays[self.settings.attention_mask] = mask.astype(self.dtypes[self.settings.attention_mask])
        return arrays
