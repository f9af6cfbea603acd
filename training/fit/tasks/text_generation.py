"""text-generation: a text file or a folder of .txt/.md files -> byte-level BPE + a small GPT decoder.

Exported with the KV cache the server's generation engine drives (training/fit/kv_cache.py) and refused
unless greedy decoding through ONNX Runtime equals torch and batched equals alone (training/fit/decoding.py).
The bundled tiny-gpt is this task on Shakespeare's plays (training/presets/tiny_gpt.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from tokenizers import Tokenizer

from service.schema.config import (
    MODEL_FILE,
    TOKENIZER_FILE,
    BatchingSettings,
    GenerationSettings,
    ModelConfig,
    load_config,
)
from training.card import CardText
from training.evaluate import open_session
from training.family import TrainResult
from training.fit import common
from training.fit.bpe import EOS_TOKEN, encode_documents, train_tokenizer
from training.fit.corpus import CorpusParts, split_corpus
from training.fit.decoding import PARITY_FILE, check_decoding, parity_prompts, parity_tokens
from training.fit.errors import DataError
from training.fit.kv_cache import export_spec, generation_settings, tensor_specs
from training.fit.options import (
    DEFAULT_GPT_DROPOUT,
    DEFAULT_GPT_LAYERS,
    DEFAULT_GPT_WIDTH,
    DEFAULT_VOCAB_SIZE_GPT,
    FitOptions,
)
from training.fit.perplexity import bigram_perplexity, perplexity_metrics
from training.fit.release import FitRelease, publish_fit
from training.fit.windows import RandomWindows, SequentialWindows, next_token_step
from training.loop import FitConfig
from training.models.tiny_gpt import GPTConfig, TinyGPT

SUMMARY = "a text file or folder of .txt/.md -> byte-level BPE + small GPT decoder exported with a KV cache"
DEFAULTS = FitConfig(epochs=20, batch_size=16, lr=2e-3, weight_decay=0.1, patience=3)
MIN_STEPS, MAX_STEPS = 10, 50
"""Batches of random windows per "epoch" by default: about one pass over the training tokens, within these
bounds, so validation and early stopping look often enough to matter in a run of minutes."""
DEFAULT_MAX_TOKENS, MAX_TOKENS_LIMIT = 64, 256
"""Served generation: new tokens when a request names none, and the most it may ask for (each at most
half / all of the context)."""


def load(options: FitOptions) -> CorpusParts:
    """The user's corpus, read strictly as UTF-8 and cut by position into train/validation/test."""
    return split_corpus(options.data, options)


@dataclass(frozen=True)
class Streams:
    """The corpus as token streams under the tokenizer learned on its training part."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def encode_parts(parts: CorpusParts, tokenizer: Tokenizer) -> Streams:
    """What training, evaluation and a client scoring the held-out text through the server all window."""
    pieces = (parts.train, parts.validation, parts.test)
    return Streams(*(np.asarray(encode_documents(tokenizer, p), dtype=np.int64) for p in pieces))


def check_lengths(streams: Streams, options: FitOptions) -> None:
    needed = options.context + 1
    for name, stream in (("training", streams.train), ("validation", streams.validation), ("test", streams.test)):
        least = needed + (name == "training")
        if len(stream) < least:
            raise DataError(
                f"{options.data}: corpus too small for --context {options.context}: the {name} part has "
                f"{len(stream)} tokens and needs at least {least}; add text, lower --context, or raise the "
                "split fractions"
            )


def gpt_config(options: FitOptions, vocab_size: int) -> GPTConfig:
    width = options.width or DEFAULT_GPT_WIDTH
    heads = options.heads or (4 if width % 4 == 0 else 1)
    if width % heads:
        raise DataError(f"--heads {heads} does not divide the model width {width} (--width)")
    return GPTConfig(
        vocab_size=vocab_size,
        context_length=options.context,
        n_layers=options.layers or DEFAULT_GPT_LAYERS,
        n_heads=heads,
        d_model=width,
        dropout=DEFAULT_GPT_DROPOUT if options.dropout is None else options.dropout,
    )


def served_generation(gpt: GPTConfig, eos: int, options: FitOptions) -> GenerationSettings:
    limit = options.max_tokens_limit or min(MAX_TOKENS_LIMIT, gpt.context_length)
    if limit > gpt.context_length:
        raise DataError(f"--max-tokens-limit {limit} exceeds the context of {gpt.context_length} tokens (--context)")
    return generation_settings(gpt, eos, min(DEFAULT_MAX_TOKENS, gpt.context_length // 2, limit), limit)


def scores(session: ort.InferenceSession, streams: Streams, generation: GenerationSettings) -> dict[str, Any]:
    """Test perplexity (the headline) and validation perplexity (what chose the checkpoint)."""
    test = perplexity_metrics(session, streams.test, generation)
    validation = perplexity_metrics(session, streams.validation, generation)
    return {
        "split": "test",
        "n": test["tokens"],
        "test_loss": test["loss"],
        "test_perplexity": test["perplexity"],
        "validation_loss": validation["loss"],
        "validation_perplexity": validation["perplexity"],
        "validation_tokens": validation["tokens"],
    }


def evaluate(parts: CorpusParts, options: FitOptions, version_dir: Path) -> dict[str, Any]:
    """Perplexities of an exported version, with its own tokenizer and generation settings."""
    generation = load_config(version_dir.parent).generation
    if generation is None:
        raise FileNotFoundError(f"{version_dir.parent}/config.yaml has no generation section")
    tokenizer = Tokenizer.from_file(str(version_dir / TOKENIZER_FILE))
    return scores(open_session(version_dir), encode_parts(parts, tokenizer), generation)


def card_text(
    parts: CorpusParts, options: FitOptions, streams: Streams, gpt: GPTConfig, steps: int, batch: int
) -> CardText:
    tokens = f"{len(streams.train):,} / {len(streams.validation):,} / {len(streams.test):,}"
    return CardText(
        data=(
            f"`{options.data}`: {len(parts.files)} file(s), {parts.characters:,} characters, split "
            f"{parts.rule}: {tokens} tokens (train / validation / test). Byte-level BPE (Hugging Face "
            f"`tokenizers`, {gpt.vocab_size} tokens, `{EOS_TOKEN}` after each document) learned on the "
            "training part only; saved as `tokenizer.json`."
        ),
        architecture=(
            f"Decoder-only transformer (nanoGPT style): token + learned position embeddings (context "
            f"{gpt.context_length}), {gpt.n_layers} pre-norm blocks of causal self-attention ({gpt.n_heads} "
            f"heads of {gpt.head_dim}) and a GELU MLP (x4), final LayerNorm, output head tied to the token "
            "embedding. Exported as one graph with a KV cache: inputs `input_ids`, `position_ids` [batch, "
            "seq], `attention_mask` [batch, past+seq] (1 = real token, so left-padded rows batch exactly) and "
            "`past_key_values.{i}.key/value` [batch, heads, past, head_dim] (past 0 allowed); outputs "
            "`logits` [batch, seq, vocab] and `present.{i}.key/value`. The export is refused unless greedy "
            "decoding through ONNX Runtime with the cache equals torch without a cache, token for token, and "
            f"decoding the prompts as one padded batch equals decoding each alone (`{PARITY_FILE}`)."
        ),
        evaluation=(
            "Perplexity = exp(mean next-token cross-entropy) over every token of the held-out test part, in "
            f"non-overlapping windows of {gpt.context_length} tokens, through ONNX Runtime; "
            "`validation_perplexity` likewise on the validation part (which also chose the checkpoint). "
            "`baseline.*`: a bigram model on the same tokens."
        ),
        craft=[
            "loss: next-token cross-entropy",
            f"an epoch is {steps} batches of {batch} random windows of {gpt.context_length} tokens; "
            "validation on every window of the validation part after each",
            f"dropout {gpt.dropout}",
        ],
    )


def publish(parts: CorpusParts, options: FitOptions, started: float) -> TrainResult:
    tokenizer = train_tokenizer(parts.train, options.vocab_size or DEFAULT_VOCAB_SIZE_GPT)
    eos = tokenizer.token_to_id(EOS_TOKEN)
    streams = encode_parts(parts, tokenizer)
    check_lengths(streams, options)
    gpt = gpt_config(options, tokenizer.get_vocab_size())
    generation = served_generation(gpt, eos, options)
    generator = common.seed(options)  # before the weights are drawn: same seed, same model in any process
    model = TinyGPT(gpt)
    config = common.fit_config(DEFAULTS, options)
    steps = options.steps_per_epoch or min(
        MAX_STEPS, max(MIN_STEPS, len(streams.train) // (config.batch_size * gpt.context_length))
    )
    result = common.train(
        model,
        next_token_step,
        RandomWindows(torch.from_numpy(streams.train), gpt.context_length, config.batch_size, steps, generator),
        SequentialWindows(streams.validation, gpt.context_length, config.batch_size),
        config,
        options,
    )
    inputs, outputs = tensor_specs(gpt)
    model_config = ModelConfig(
        name=options.name,
        task="text-generation",
        description=f"Small GPT-style decoder trained on {options.data.name}; generates text in its style.",
        inputs=inputs,
        outputs=outputs,
        batching=BatchingSettings(max_batch_size=16, max_queue_delay_ms=0.0, max_queue_size=256),
        generation=generation,
        parameters={"hyperparameters": common.hyper(gpt)},
    )
    prompts = parity_prompts(parts.validation)
    new_tokens = parity_tokens(tokenizer, prompts, gpt.context_length)
    vocab = tokenizer.get_vocab_size()
    release = FitRelease(
        config=model_config,
        export=export_spec(model, {"model": options.name, "hyperparameters": common.hyper(gpt), "eos_token_id": eos}),
        fit=result,
        fit_config=config,
        hyperparameters={**common.hyper(gpt), "tokenizer": f"byte-level BPE, {vocab} tokens"},
        card=card_text(parts, options, streams, gpt, steps, config.batch_size),
        evaluate=lambda version_dir: scores(open_session(version_dir), streams, generation),
        baseline=bigram_perplexity(streams.train, streams.validation, streams.test, vocab),
        data={
            "source": "corpus",
            "split": parts.rule,
            "files": len(parts.files),
            "characters": parts.characters,
            "tokens": {"train": len(streams.train), "validation": len(streams.validation), "test": len(streams.test)},
        },
        files={
            TOKENIZER_FILE: lambda path: tokenizer.save(str(path)),
            # Runs after model.onnx is staged and before the version is committed: a failure aborts it.
            PARITY_FILE: lambda path: check_decoding(
                model, tokenizer, path.parent / MODEL_FILE, path, prompts, new_tokens
            ),
        },
    )
    return publish_fit(release, options, started)
