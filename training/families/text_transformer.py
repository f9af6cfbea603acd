"""text-transformer: spam/ham classification of SMS messages with a small transformer encoder."""

from __future__ import annotations

from training.families.text_classifier import TextFamilySpec, make_family
from training.loop import FitConfig
from training.models.text_transformer import TextTransformer, TransformerConfig
from training.tokenizer import MAX_LENGTH


def build(vocab_size: int, pad_id: int) -> tuple[TextTransformer, TransformerConfig]:
    config = TransformerConfig(vocab_size=vocab_size, pad_token_id=pad_id)
    return TextTransformer(config), config


FAMILY = make_family(
    TextFamilySpec(
        name="text-transformer",
        summary="transformer encoder on the SMS Spam Collection (text classification, ham/spam)",
        description="SMS spam detector: BPE tokens, sinusoidal positions, transformer encoder, mean pooling.",
        padding="longest",
        fit=FitConfig(epochs=30, batch_size=64, lr=1e-3, weight_decay=1e-2, patience=5),
        build=build,
        architecture=(
            "Token embedding scaled by sqrt(d_model) plus fixed sinusoidal positions; pre-norm encoder "
            "blocks (multi-head self-attention that ignores padded keys, GELU MLP, residuals, layer norm); "
            "final layer norm; mean over real tokens only; dropout; linear; softmax inside the exported "
            "graph. Served with `padding: longest`: masking makes an answer identical whether a message is "
            "alone or right-padded in a batch of longer ones."
        ),
        max_parity_length=MAX_LENGTH,
    )
)
