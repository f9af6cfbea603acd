"""text-generation: a text file or a folder of .txt/.md files -> byte-level BPE + the tiny-gpt decoder.

Exported with the KV cache exactly as the bundled tiny-gpt (the same export checks, including greedy
decoding through ONNX Runtime == torch, batched == alone), so the server's generation engine serves it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from service.schema.config import TOKENIZER_FILE, BatchingSettings, GenerationSettings, ModelConfig, TensorSpec
from training.card import CardText
from training.data.shakespeare import EOS_TOKEN, encode_documents, train_tokenizer
from training.evaluate import open_session
from training.export import ExportSpec
from training.families.tiny_gpt import (
    ATTENTION_MASK,
    INPUT_IDS,
    LOGITS,
    PARITY_FILE,
    POSITION_IDS,
    RandomWindows,
    SequentialWindows,
    check_decoding,
    past_names,
    perplexity_metrics,
    present_names,
    random_decoder_inputs,
    step,
)
from training.family import TrainResult
from training.fit import common
from training.fit.corpus import CorpusParts, split_corpus
from training.fit.errors import DataError
from training.fit.options import DEFAULT_GPT_LAYERS, DEFAULT_GPT_WIDTH, DEFAULT_VOCAB_SIZE_GPT, FitOptions
from training.fit.release import FitRelease, publish_fit
from training.loop import FitConfig
from training.models.tiny_gpt import GPTConfig, KVCacheDecoder, TinyGPT

SUMMARY = "a text file or folder of .txt/.md -> byte-level BPE + small GPT decoder exported with a KV cache"
DEFAULTS = FitConfig(epochs=20, batch_size=16, lr=2e-3, weight_decay=0.1, patience=3)
MIN_STEPS, MAX_STEPS = 10, 50
"""Batches of random windows per "epoch": about one pass over the training tokens, within these bounds."""
PROMPTS = 3


def bigram_perplexity(train: np.ndarray, validation: np.ndarray, test: np.ndarray, vocab: int) -> dict[str, Any]:
    """Add-k smoothed bigram model on the same tokens; k chosen on validation from 1, 0.1, 0.01."""
    pairs = train[:-1] * vocab + train[1:]
    codes, counts = np.unique(pairs, return_counts=True)
    context_counts = np.bincount(train[:-1], minlength=vocab).astype(np.float64)

    def loss(tokens: np.ndarray, k: float) -> float:
        query = tokens[:-1] * vocab + tokens[1:]
        at = np.clip(np.searchsorted(codes, query), 0, len(codes) - 1)
        pair = np.where(codes[at] == query, counts[at], 0).astype(np.float64)
        p = (pair + k) / (context_counts[tokens[:-1]] + k * vocab)
        return float(-np.log(p).mean())

    k = min((1.0, 0.1, 0.01), key=lambda value: loss(validation, value))
    return {"name": f"bigram, add-{k:g} smoothing", "test_perplexity": math.exp(loss(test, k))}


def encode_parts(parts: CorpusParts, tokenizer: Tokenizer) -> list[np.ndarray]:
    """Training, validation and test token streams: what training, evaluation and a client scoring the
    held-out text through the server all window (with `stream_windows`)."""
    pieces = (parts.train, parts.validation, parts.test)
    return [np.asarray(encode_documents(tokenizer, p), dtype=np.int64) for p in pieces]


def run(options: FitOptions) -> TrainResult:
    started = time.perf_counter()
    parts = split_corpus(options.data, options)
    tokenizer = train_tokenizer(parts.train, options.vocab_size or DEFAULT_VOCAB_SIZE_GPT)
    eos = tokenizer.token_to_id(EOS_TOKEN)
    streams = encode_parts(parts, tokenizer)
    needed = options.context + 1
    for name, stream in zip(("training", "validation", "test"), streams, strict=True):
        if len(stream) < needed + (1 if name == "training" else 0):
            raise DataError(
                f"{options.data}: corpus too small for --context {options.context}: the {name} part has "
                f"{len(stream)} tokens and needs at least {needed + (name == 'training')}; add text, lower "
                "--context, or raise the split fractions"
            )
    train_tokens, val_tokens, test_tokens = streams
    width = options.width or DEFAULT_GPT_WIDTH
    gpt = GPTConfig(
        vocab_size=tokenizer.get_vocab_size(),
        context_length=options.context,
        n_layers=options.layers or DEFAULT_GPT_LAYERS,
        n_heads=4 if width % 4 == 0 else 1,
        d_model=width,
        dropout=0.1,
    )
    model = TinyGPT(gpt)
    generator = common.seed(options)
    config = common.fit_config(DEFAULTS, options)
    steps = min(MAX_STEPS, max(MIN_STEPS, len(train_tokens) // (config.batch_size * gpt.context_length)))
    result = common.train(
        model,
        step,
        RandomWindows(torch.from_numpy(train_tokens), gpt.context_length, config.batch_size, steps, generator),
        SequentialWindows(val_tokens, gpt.context_length, config.batch_size),
        config,
        options,
    )
    batch_seq, cache = [-1, -1], [-1, gpt.n_heads, -1, gpt.head_dim]
    generation = GenerationSettings(
        eos_token_id=eos,
        context_length=gpt.context_length,
        n_layers=gpt.n_layers,
        n_heads=gpt.n_heads,
        head_dim=gpt.head_dim,
        attention_mask=ATTENTION_MASK,
        default_max_tokens=min(64, gpt.context_length // 2),
        max_tokens_limit=min(256, gpt.context_length),
    )
    model_config = ModelConfig(
        name=options.name,
        task="text-generation",
        description=f"Small GPT-style decoder trained with `nnserve-train fit` on {options.data.name}.",
        inputs=[
            TensorSpec(name=INPUT_IDS, datatype="INT64", shape=batch_seq),
            TensorSpec(name=POSITION_IDS, datatype="INT64", shape=batch_seq),
            TensorSpec(name=ATTENTION_MASK, datatype="INT64", shape=batch_seq),
            *(TensorSpec(name=n, datatype="FP32", shape=cache) for n in past_names(gpt.n_layers)),
        ],
        outputs=[
            TensorSpec(name=LOGITS, datatype="FP32", shape=[-1, -1, gpt.vocab_size]),
            *(TensorSpec(name=n, datatype="FP32", shape=cache) for n in present_names(gpt.n_layers)),
        ],
        batching=BatchingSettings(max_batch_size=16, max_queue_delay_ms=0.0, max_queue_size=256),
        generation=generation,
        parameters={"hyperparameters": common.hyper(gpt)},
    )
    prompts = tuple(line.strip()[:40] for line in "".join(parts.validation).splitlines() if line.strip())[:PROMPTS]
    new_tokens = max(1, min(32, gpt.context_length - max(len(tokenizer.encode(p).ids) for p in prompts) - 1))

    def evaluate(version_dir: Path) -> dict[str, Any]:
        test = perplexity_metrics(open_session(version_dir), test_tokens, generation)
        return {"split": "test", "n": test["tokens"], "test_loss": test["loss"], "test_perplexity": test["perplexity"]}

    hyperparameters = {**common.hyper(gpt), "tokenizer": f"byte-level BPE, {tokenizer.get_vocab_size()} tokens"}
    release = FitRelease(
        config=model_config,
        export=ExportSpec(
            module=KVCacheDecoder(model),
            make_inputs=random_decoder_inputs(gpt),
            output_names=[LOGITS, *present_names(gpt.n_layers)],
            dynamic_axes={
                INPUT_IDS: {0: "batch", 1: "seq"},
                POSITION_IDS: {0: "batch", 1: "seq"},
                ATTENTION_MASK: {0: "batch", 1: "total"},
                **{name: {0: "batch", 2: "past"} for name in past_names(gpt.n_layers)},
            },
            metadata={"model": options.name, "hyperparameters": common.hyper(gpt), "eos_token_id": eos},
        ),
        fit=result,
        fit_config=config,
        hyperparameters=hyperparameters,
        card=CardText(
            data=(
                f"`{options.data}`: {len(parts.files)} file(s), {parts.characters:,} characters, split by position "
                f"(train first, then validation, then test): {len(train_tokens):,} / {len(val_tokens):,} / "
                f"{len(test_tokens):,} tokens. Byte-level BPE learned on the training part only."
            ),
            architecture=(
                f"Decoder-only transformer: context {gpt.context_length}, {gpt.n_layers} blocks, {gpt.n_heads} "
                f"heads, width {gpt.d_model}, tied output head; exported with a KV cache and refused unless "
                f"greedy decoding through ONNX Runtime equals torch token for token (`{PARITY_FILE}`)."
            ),
            evaluation=(
                "Perplexity = exp(mean next-token cross-entropy) over the held-out test part, in non-overlapping "
                f"windows of {gpt.context_length} tokens. `baseline.*`: a bigram model on the same tokens."
            ),
            craft=["loss: next-token cross-entropy", f"an epoch is {steps} batches of random windows"],
        ),
        evaluate=evaluate,
        baseline=bigram_perplexity(train_tokens, val_tokens, test_tokens, tokenizer.get_vocab_size()),
        data={
            "source": "corpus",
            "files": len(parts.files),
            "characters": parts.characters,
            "tokens": {"train": len(train_tokens), "validation": len(val_tokens), "test": len(test_tokens)},
        },
        files={
            TOKENIZER_FILE: lambda path: tokenizer.save(str(path)),
            PARITY_FILE: lambda path: check_decoding(
                model, tokenizer, path.parent / "model.onnx", path, prompts, new_tokens
            ),
        },
    )
    return publish_fit(release, options, started)
