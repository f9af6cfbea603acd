"""text-lstm: spam/ham classification of SMS messages with a bidirectional LSTM."""

from __future__ import annotations

from training.families.text_classifier import TextFamilySpec, make_family
from training.loop import FitConfig
from training.models.lstm import LSTMConfig, TextLSTM
from training.tokenizer import MAX_LENGTH


def build(vocab_size: int, pad_id: int) -> tuple[TextLSTM, LSTMConfig]:
    config = LSTMConfig(vocab_size=vocab_size, pad_token_id=pad_id)
    return TextLSTM(config), config


FAMILY = make_family(
    TextFamilySpec(
        name="text-lstm",
        summary="bidirectional LSTM on the SMS Spam Collection (text classification, ham/spam)",
        description="SMS spam detector: BPE tokens, embedding, bidirectional LSTM, mean+max pooling.",
        padding="max_length",
        fit=FitConfig(epochs=25, batch_size=64, lr=3e-3, weight_decay=1e-4, patience=5),
        build=build,
        architecture=(
            "Token embedding (padding id embeds to zero), dropout, one bidirectional LSTM layer, masked "
            "mean and max pooling over real tokens (concatenated), dropout, linear; softmax inside the "
            f"exported graph. Served with every message padded to {MAX_LENGTH} tokens, so an answer never "
            "depends on what else is in the batch (the backward LSTM reads the padding first)."
        ),
        max_parity_length=MAX_LENGTH,
        exporter="torchscript",
    )
)
