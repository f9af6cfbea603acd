"""The byte-level BPE of text-generation: learned on the training part only, with an end-of-text token.

Byte-level means any Unicode prompt is encodable, so the server never meets an unknown character.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

EOS_TOKEN = "<|endoftext|>"
"""Separates documents in the token stream; the generator stops when the model emits it."""


def train_tokenizer(texts: list[str], vocab_size: int) -> Tokenizer:
    """A GPT-2 style byte-level BPE with EOS as its first special token (id 0).

    `add_prefix_space=False` keeps decode(encode(s)) == s. The trainer's result is a function of the
    texts and the size alone (tests/training/test_fit_text_generation.py checks it across processes).
    """
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def encode_documents(tokenizer: Tokenizer, texts: list[str]) -> list[int]:
    """One token stream: each document followed by EOS, so the model learns where a text ends."""
    eos = tokenizer.token_to_id(EOS_TOKEN)
    stream: list[int] = []
    for encoding in tokenizer.encode_batch(texts):
        stream.extend(encoding.ids)
        stream.append(eos)
    return stream
