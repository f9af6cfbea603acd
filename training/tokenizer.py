"""The subword tokenizer shared by the text classifiers (Hugging Face `tokenizers`, BPE).

Trained on the training split only, so validation and test messages are tokenized with a vocabulary
that never saw them. Saved as `tokenizer.json` beside each model with truncation and padding already
set the way that model is served, so `Tokenizer.from_file(...).encode_batch(texts)` gives its inputs.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
VOCAB_SIZE = 4000
MAX_LENGTH = 128
"""Tokens kept per message; 99% of SMS messages are shorter."""

Padding = Literal["longest", "max_length"]


def train_tokenizer(texts: list[str], vocab_size: int = VOCAB_SIZE) -> Tokenizer:
    """BPE over NFKC-normalised, lower-cased words and punctuation runs; [PAD] is id 0, [UNK] id 1."""
    tokenizer = Tokenizer(models.BPE(unk_token=UNK_TOKEN))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.decoder = decoders.BPEDecoder()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=[PAD_TOKEN, UNK_TOKEN], show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def for_serving(tokenizer: Tokenizer, padding: Padding, max_length: int = MAX_LENGTH) -> Tokenizer:
    """A copy that truncates to `max_length` and pads to the batch's longest or to `max_length`."""
    served = Tokenizer.from_str(tokenizer.to_str())
    served.enable_truncation(max_length=max_length)
    pad_id = pad_token_id(served)
    length = max_length if padding == "max_length" else None
    served.enable_padding(pad_id=pad_id, pad_token=PAD_TOKEN, length=length)
    return served


def pad_token_id(tokenizer: Tokenizer) -> int:
    pad_id = tokenizer.token_to_id(PAD_TOKEN)
    if pad_id is None:
        raise ValueError(f"tokenizer has no {PAD_TOKEN} token")
    return int(pad_id)


def encode(tokenizer: Tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, attention_mask), both (N, T) int64, padded as the tokenizer is configured."""
    encodings = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, mask
