"""Text in and out of the generator: the model's tokenizer, streaming detokenization, stop strings."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer

REPLACEMENT = "\ufffd"
"""What a decoder prints for bytes that are not (yet) a whole UTF-8 character."""


class TextTokenizer:
    """The `tokenizer.json` shipped in the model's version folder (Hugging Face `tokenizers`)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer

    @classmethod
    def from_file(cls, path: Path) -> TextTokenizer:
        return cls(Tokenizer.from_file(str(path)))

    @property
    def vocabulary_size(self) -> int:
        """Token ids this tokenizer may produce (added tokens included)."""
        size: int = self._tokenizer.get_vocab_size(with_added_tokens=True)
        return size

    def encode(self, text: str) -> list[int]:
        ids: list[int] = self._tokenizer.encode(text, add_special_tokens=False).ids
        return ids

    def decode(self, ids: list[int]) -> str:
        text: str = self._tokenizer.decode(ids, skip_special_tokens=True)
        return text


class IncrementalDecoder:
    """Token ids in, text deltas out, never splitting a character.

    A byte-level BPE token can end in the middle of a multi-byte UTF-8 character; decoding it alone
    gives U+FFFD. So a delta is released only once the text decoded so far does not end in U+FFFD, and
    only a short window of tokens is re-decoded each time (the approach of Hugging Face TGI and vLLM),
    so streaming costs O(1) per token, not O(length).
    """

    def __init__(self, tokenizer: TextTokenizer) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix_offset = 0
        """Start of the window re-decoded for context (a character boundary)."""
        self._read_offset = 0
        """Tokens before this are already in the text released."""

    def push(self, token: int) -> str:
        """The new text that `token` completes, possibly empty."""
        self._ids.append(token)
        prefix = self._tokenizer.decode(self._ids[self._prefix_offset : self._read_offset])
        text = self._tokenizer.decode(self._ids[self._prefix_offset :])
        if len(text) <= len(prefix) or text.endswith(REPLACEMENT):
            return ""
        self._prefix_offset, self._read_offset = self._read_offset, len(self._ids)
        return text[len(prefix) :]

    def flush(self) -> str:
        """Whatever is held back at the end of generation, incomplete characters included."""
        if self._read_offset == len(self._ids):
            return ""
        prefix = self._tokenizer.decode(self._ids[self._prefix_offset : self._read_offset])
        text = self._tokenizer.decode(self._ids[self._prefix_offset :])
        self._prefix_offset = self._read_offset = len(self._ids)
        return text[len(prefix) :]


class StopMatcher:
    """Cuts the output before the first stop string, even when one arrives split across several deltas.

    Text that could still turn out to be the start of a stop string is held back, so a streaming client
    never receives the beginning of a stop string that is later removed.
    """

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = stops
        self._pending = ""

    def push(self, delta: str) -> tuple[str, bool]:
        """(text safe to release now, whether a stop string was found)."""
        if not self._stops:
            return delta, False
        text = self._pending + delta
        hits = [i for i in (text.find(stop) for stop in self._stops) if i >= 0]
        if hits:
            self._pending = ""
            return text[: min(hits)], True
        held = self._held_suffix(text)
        self._pending = text[len(text) - held :]
        return text[: len(text) - held], False

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return text

    def _held_suffix(self, text: str) -> int:
        """Length of the longest end of `text` that is a proper prefix of some stop string."""
        longest = min(len(text), max(len(stop) for stop in self._stops) - 1)
        for size in range(longest, 0, -1):
            tail = text[-size:]
            if any(stop.startswith(tail) for stop in self._stops):
                return size
        return 0
