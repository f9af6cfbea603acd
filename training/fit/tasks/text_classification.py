"""text-classification: a CSV/TSV/JSONL of texts and labels -> a BPE tokenizer and an LSTM or transformer.

The tokenizer is trained on the training split only and saved as `tokenizer.json` with the model's
truncation and padding, so the server tokenizes exactly as training did. The bundled text-lstm and
text-transformer are this task on the SMS Spam Collection (training/presets/): their `load` hands
`publish` the same `LabelledTexts` that `load` builds from a user's file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from service.schema.config import (
    TOKENIZER_FILE,
    BatchingSettings,
    ClassificationSettings,
    ModelConfig,
    TensorSpec,
    TextPreprocessing,
)
from training.baseline import BASELINE_NAME, baseline_pipeline
from training.card import CardText
from training.evaluate import classification_metrics, open_session
from training.export import ExportSpec
from training.family import TrainResult
from training.fit import common
from training.fit.errors import DataError, first_few
from training.fit.options import DEFAULT_VOCAB_SIZE_TEXT, FitOptions
from training.fit.release import FitRelease, publish_fit
from training.fit.split import Split, split_rows
from training.fit.tables import is_missing, read_table
from training.fit.text_batches import random_text_inputs, token_batches
from training.loop import FitConfig
from training.models.heads import Probabilities
from training.models.lstm import LSTMConfig, TextLSTM
from training.models.text_transformer import TextTransformer, TransformerConfig
from training.tokenizer import Padding, encode, for_serving, pad_token_id, train_tokenizer

SUMMARY = "texts and labels in a CSV/TSV/JSONL -> BPE tokenizer + transformer or bidirectional LSTM"
DEFAULTS = {
    "transformer": FitConfig(epochs=20, batch_size=64, lr=3e-3, weight_decay=1e-4, patience=4),
    "lstm": FitConfig(epochs=20, batch_size=64, lr=3e-3, weight_decay=1e-4, patience=4),
}
PADDING: dict[str, Padding] = {"transformer": "longest", "lstm": "max_length"}
"""The LSTM's backward direction reads padding, so it is served padded to max_length (see docs)."""
ARCHITECTURE = {
    "lstm": (
        "Token embedding (padding id embeds to zero), dropout, bidirectional LSTM, masked mean and max "
        "pooling over real tokens (concatenated), dropout, linear; softmax inside the exported graph. Served "
        "with every text padded to max_length, so an answer never depends on what else is in the batch (the "
        "backward LSTM reads the padding first)."
    ),
    "transformer": (
        "Token embedding scaled by sqrt(d_model) plus fixed sinusoidal positions; pre-norm encoder blocks "
        "(multi-head self-attention that ignores padded keys, GELU MLP, residuals, layer norm); final layer "
        "norm; mean over real tokens only; dropout; linear; softmax inside the exported graph. Served with "
        "`padding: longest`: masking makes an answer identical whether a text is alone or right-padded in a "
        "batch of longer ones."
    ),
}
EVAL_BATCH = 64


@dataclass(frozen=True)
class LabelledTexts:
    """What `load` checked and prepared: the texts, class names, label indices and the split."""

    texts: list[str]
    labels: list[str]
    y: np.ndarray
    split: Split
    positive: int | None
    """Index of --positive-label in `labels` (None: no positive class)."""
    source: str
    """Where the texts come from, for the card (file and columns, or the bundled corpus)."""


def positive_index(labels: list[str], options: FitOptions) -> int | None:
    """The class of --positive-label; a DataError unless it is one of exactly two classes."""
    wanted = options.positive_label
    if wanted is None:
        return None
    if wanted not in labels:
        raise DataError(f"--positive-label {wanted!r} is not a class of {options.data}: {', '.join(labels)}")
    if len(labels) != 2:
        raise DataError(
            f"--positive-label needs exactly two classes; {options.data} has {len(labels)}: {', '.join(labels)}"
        )
    return labels.index(wanted)


def labelled(
    texts: list[str],
    text_labels: list[str],
    options: FitOptions,
    source: str,
    split_values: Sequence[str | None] | None = None,
    where: Callable[[int], str] = str,
) -> LabelledTexts:
    """Class names, label indices and the split (stratified, or the given split values) of labelled texts."""
    labels = common.class_labels(text_labels, source)
    positive = positive_index(labels, options)
    y = np.asarray([labels.index(v) for v in text_labels], dtype=np.int64)
    split = split_rows(
        len(texts),
        options,
        labels=text_labels,
        keys=[t.strip() for t in texts],
        split_values=split_values,
        where=where,
    )
    return LabelledTexts(texts, labels, y, split, positive, source)


def load(options: FitOptions) -> LabelledTexts:
    label_column = options.label_column or "label"
    table = read_table(options.data)
    texts_raw = table.column(options.text_column, "text")
    labels_raw = table.column(label_column, "label")
    empty = [
        table.where(i)
        for i, (t, v) in enumerate(zip(texts_raw, labels_raw, strict=True))
        if t is None or not t.strip() or is_missing(v)
    ]
    if empty:
        raise DataError(
            f"empty text (column {options.text_column!r}) or label (column {label_column!r}) at {first_few(empty)}"
        )
    return labelled(
        [str(t) for t in texts_raw],
        [str(v).strip() for v in labels_raw],
        options,
        f"`{options.data}` (texts in column `{options.text_column}`, labels in column `{label_column}`)",
        table.cells[options.split_column] if options.split_column else None,
        table.where,
    )


def build(arch: str, vocab: int, pad_id: int, n_classes: int, options: FitOptions) -> tuple[nn.Module, Any]:
    if arch == "lstm":
        lstm = LSTMConfig(vocab_size=vocab, pad_token_id=pad_id, n_classes=n_classes)
        if options.width:
            lstm = replace(lstm, embed_dim=options.width, hidden=options.width)
        if options.layers:
            lstm = replace(lstm, layers=options.layers)
        return TextLSTM(lstm), lstm
    transformer = TransformerConfig(vocab_size=vocab, pad_token_id=pad_id, n_classes=n_classes)
    if options.width:
        transformer = replace(transformer, d_model=options.width, d_ff=2 * options.width)
    if options.layers:
        transformer = replace(transformer, n_layers=options.layers)
    return TextTransformer(transformer), transformer


def scores(data: LabelledTexts, rows: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy, plus precision/recall/F1 of the positive class if there is one, else macro F1."""
    return classification_metrics(data.y[rows], predicted, positive=data.positive)


def baseline(data: LabelledTexts) -> dict[str, Any]:
    """TF-IDF (word 1-2 grams) + logistic regression, fit on the training split, scored on the test split."""
    train, test = data.split.train, data.split.test
    pipeline = baseline_pipeline().fit([data.texts[i] for i in train], data.y[train])
    return {"name": BASELINE_NAME, **scores(data, test, pipeline.predict([data.texts[i] for i in test]))}


def model_scores(data: LabelledTexts, version_dir: Path) -> dict[str, Any]:
    """The exported graph on the test split, tokenized with the version's own tokenizer.json."""
    from tokenizers import Tokenizer

    test_texts = [data.texts[i] for i in data.split.test]
    saved = Tokenizer.from_file(str(version_dir / TOKENIZER_FILE))
    session = open_session(version_dir)
    probabilities = []
    for start in range(0, len(test_texts), EVAL_BATCH):
        ids, mask = encode(saved, test_texts[start : start + EVAL_BATCH])
        probabilities.append(session.run(None, {"input_ids": ids, "attention_mask": mask})[0])
    predicted = np.argmax(np.concatenate(probabilities), axis=1)
    return {"split": "test", "n": len(test_texts), **scores(data, data.split.test, predicted)}


def evaluate(data: LabelledTexts, options: FitOptions, version_dir: Path) -> dict[str, Any]:
    return {**model_scores(data, version_dir), "baseline": baseline(data)}


def publish(data: LabelledTexts, options: FitOptions, started: float) -> TrainResult:
    texts, labels, y, split = data.texts, data.labels, data.y, data.split
    arch = options.arch or "transformer"
    train_texts = [texts[i] for i in split.train]
    vocab_size = options.vocab_size or DEFAULT_VOCAB_SIZE_TEXT
    # Training rows are padded to max_length and, for `longest`, trimmed per batch: the same token
    # ids the server will produce, without paying for max_length positions on every batch.
    tokenizer = for_serving(train_tokenizer(train_texts, vocab_size), "max_length", options.max_length)
    pad_id = pad_token_id(tokenizer)
    padding = PADDING[arch]
    generator = common.seed(options)
    model, hparams = build(arch, tokenizer.get_vocab_size(), pad_id, len(labels), options)
    config = common.fit_config(DEFAULTS[arch], options)

    def part(rows: np.ndarray, shuffle: bool) -> DataLoader[tuple[torch.Tensor, ...]]:
        ids, mask = encode(tokenizer, [texts[i] for i in rows])
        return token_batches(ids, mask, y[rows], padding, config.batch_size, shuffle, generator)

    result = common.train(model, common.classify_step, part(split.train, True), part(split.val, False), config, options)
    served = for_serving(tokenizer, padding, options.max_length)
    positive_label = None if data.positive is None else labels[data.positive]
    model_config = ModelConfig(
        name=options.name,
        task="text-classification",
        description=f"Text classifier ({arch}) trained with `nnserve-train fit` on {options.data.name}.",
        inputs=[
            TensorSpec(name="input_ids", datatype="INT64", shape=[-1, -1]),
            TensorSpec(name="attention_mask", datatype="INT64", shape=[-1, -1]),
        ],
        outputs=[TensorSpec(name="probabilities", datatype="FP32", shape=[-1, len(labels)])],
        batching=BatchingSettings(max_batch_size=64, max_queue_delay_ms=0.0),
        text=TextPreprocessing(
            tokenizer=TOKENIZER_FILE, max_length=options.max_length, padding=padding, pad_token_id=pad_id
        ),
        classification=ClassificationSettings(
            labels=labels, probabilities="probabilities", positive_label=positive_label
        ),
        parameters={"hyperparameters": common.hyper(hparams)},
    )
    measured = (
        "accuracy and macro F1"
        if positive_label is None
        else f"accuracy; precision, recall and F1 of the positive class `{positive_label}`"
    )
    release = FitRelease(
        config=model_config,
        export=ExportSpec(
            module=Probabilities(model),
            make_inputs=random_text_inputs(tokenizer.get_vocab_size(), pad_id, options.max_length),
            output_names=["probabilities"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
            },
            metadata={"model": options.name, "labels": labels, "hyperparameters": common.hyper(hparams)},
            exporter="torchscript" if arch == "lstm" else "dynamo",
        ),
        fit=result,
        fit_config=config,
        hyperparameters=common.hyper(hparams),
        card=CardText(
            data=f"{data.source}: {len(texts)} texts, classes {', '.join(labels)}. Split: {split.describe()}.",
            architecture=f"{arch} ({type(model).__name__}): {ARCHITECTURE[arch]}",
            evaluation=(
                f"The held-out test split ({len(split.test)} texts), tokenized with this version's "
                f"`tokenizer.json` and padded `{padding}` as served: {measured}. `baseline.*`: TF-IDF (word "
                "1-2 grams, sublinear TF) + logistic regression (C=10) fit on the same training split."
            ),
            craft=[
                "loss: cross-entropy",
                f"tokenizer: byte-pair encoding (Hugging Face `tokenizers`), vocabulary {tokenizer.get_vocab_size()}, "
                f"NFKC + lower case, trained on the training split only; truncation to {options.max_length} "
                f"tokens, padding `{padding}` (id {pad_id})",
                f"dropout {getattr(hparams, 'dropout', 0.0)}",
            ],
        ),
        evaluate=lambda version_dir: model_scores(data, version_dir),
        baseline=baseline(data),
        data=common.data_summary(split, "table of texts", rows=len(texts), classes=labels),
        files={TOKENIZER_FILE: lambda path: served.save(str(path))},
    )
    return publish_fit(release, options, started)
