"""text-classification: a CSV/TSV/JSONL of texts and labels -> a BPE tokenizer and an LSTM or transformer.

The tokenizer is trained on the training split only and saved as `tokenizer.json` with the model's
truncation and padding, so the server tokenizes exactly as training did.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from service.schema.config import (
    TOKENIZER_FILE,
    BatchingSettings,
    ClassificationSettings,
    ModelConfig,
    TensorSpec,
    TextPreprocessing,
)
from training.baseline import baseline_pipeline
from training.card import CardText
from training.evaluate import classification_metrics, open_session
from training.export import ExportSpec
from training.families.text_classifier import LengthBuckets, random_text_inputs
from training.family import TrainResult
from training.fit import common
from training.fit.errors import DataError, first_few
from training.fit.options import DEFAULT_VOCAB_SIZE_TEXT, FitOptions
from training.fit.release import FitRelease, publish_fit
from training.fit.split import split_rows
from training.fit.tables import is_missing, read_table
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
EVAL_BATCH = 64


def _trim(batch: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
    ids, mask, y = (torch.stack(column) for column in zip(*batch, strict=True))
    width = max(1, int(mask.sum(dim=1).max()))
    return ids[:, :width], mask[:, :width], y


def _loader(
    ids: np.ndarray,
    mask: np.ndarray,
    y: np.ndarray,
    padding: Padding,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator,
) -> DataLoader[tuple[torch.Tensor, ...]]:
    dataset = TensorDataset(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(y))
    if padding == "max_length":
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)
    buckets = LengthBuckets(mask.sum(axis=1), batch_size, generator if shuffle else None)
    return DataLoader(dataset, batch_sampler=buckets, collate_fn=_trim)


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


def run(options: FitOptions) -> TrainResult:
    started = time.perf_counter()
    arch = options.arch or "transformer"
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
    texts = [str(t) for t in texts_raw]
    text_labels = [str(v).strip() for v in labels_raw]
    labels = common.class_labels(text_labels, f"{options.data} column {label_column!r}")
    y = np.asarray([labels.index(v) for v in text_labels], dtype=np.int64)
    split = split_rows(
        len(texts),
        options,
        labels=text_labels,
        keys=[t.strip() for t in texts],
        split_values=table.cells[options.split_column] if options.split_column else None,
        where=table.where,
    )
    train_texts = [texts[i] for i in split.train]
    vocab_size = options.vocab_size or DEFAULT_VOCAB_SIZE_TEXT
    tokenizer = for_serving(train_tokenizer(train_texts, vocab_size), "max_length", options.max_length)
    pad_id = pad_token_id(tokenizer)
    padding = PADDING[arch]
    generator = common.seed(options)
    model, hparams = build(arch, tokenizer.get_vocab_size(), pad_id, len(labels), options)
    config = common.fit_config(DEFAULTS[arch], options)

    def part(rows: np.ndarray, shuffle: bool) -> DataLoader[tuple[torch.Tensor, ...]]:
        ids, mask = encode(tokenizer, [texts[i] for i in rows])
        return _loader(ids, mask, y[rows], padding, config.batch_size, shuffle, generator)

    result = common.train(model, common.classify_step, part(split.train, True), part(split.val, False), config, options)
    served = for_serving(tokenizer, padding, options.max_length)
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
        classification=ClassificationSettings(labels=labels, probabilities="probabilities"),
        parameters={"hyperparameters": common.hyper(hparams)},
    )
    test_texts, test_y = [texts[i] for i in split.test], y[split.test]

    def evaluate(version_dir: Path) -> dict[str, Any]:
        from tokenizers import Tokenizer

        saved = Tokenizer.from_file(str(version_dir / TOKENIZER_FILE))
        session = open_session(version_dir)
        probabilities = []
        for start in range(0, len(test_texts), EVAL_BATCH):
            ids, mask = encode(saved, test_texts[start : start + EVAL_BATCH])
            probabilities.append(session.run(None, {"input_ids": ids, "attention_mask": mask})[0])
        merged = np.concatenate(probabilities)
        return {"split": "test", "n": len(test_y), **common.classification(test_y, merged)}

    baseline = baseline_pipeline().fit(train_texts, y[split.train])
    release = FitRelease(
        config=model_config,
        export=ExportSpec(
            module=Probabilities(model),
            make_inputs=random_text_inputs(tokenizer.get_vocab_size(), pad_id, min(options.max_length, 64)),
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
            data=(
                f"`{options.data}`: {len(texts)} texts (column `{options.text_column}`), labels "
                f"(column `{label_column}`): {', '.join(labels)}. Split: {split.describe()}."
            ),
            architecture=(
                f"{arch}: {type(model).__name__} over BPE tokens (vocabulary {tokenizer.get_vocab_size()}, "
                f"trained on the training split only, NFKC + lower case, truncation to {options.max_length}, "
                f"padding `{padding}`); softmax in the graph."
            ),
            evaluation=(
                f"The held-out test split ({len(test_y)} texts), tokenized with this version's `tokenizer.json`:"
                " accuracy and macro F1. `baseline.*`: TF-IDF (word 1-2 grams) + logistic regression fit on the "
                "same training split."
            ),
            craft=["loss: cross-entropy", f"dropout {getattr(hparams, 'dropout', 0.0)}"],
        ),
        evaluate=evaluate,
        baseline={"name": "tfidf-logreg", **classification_metrics(test_y, baseline.predict(test_texts))},
        data=common.data_summary(split, "table of texts", rows=len(texts), classes=labels),
        files={TOKENIZER_FILE: lambda path: served.save(str(path))},
    )
    return publish_fit(release, options, started)
