"""tabular-classification: a table of feature columns plus a label column -> an MLP behind the transform.

The server turns a row (by column name, or an array in column order) into the feature vector of
`service.schema.tabular`; the graph imputes, flags and standardises it (`TabularInput`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from service.schema.config import BatchingSettings, ClassificationSettings, ModelConfig, TensorSpec
from training.card import CardText
from training.evaluate import classification_metrics, open_session, run_in_batches
from training.export import ExportSpec
from training.family import TrainResult
from training.fit import common
from training.fit.errors import DataError, first_few
from training.fit.options import FitOptions
from training.fit.release import FitRelease, publish_fit
from training.fit.split import Split, split_rows
from training.fit.tables import Table, is_missing, read_table
from training.fit.tabular import (
    TabularInput,
    TabularTransform,
    column_kinds,
    features,
    fit_transform,
    random_features,
    row_keys,
)
from training.loop import FitConfig
from training.models.heads import Probabilities
from training.models.mlp import MLPConfig, TabularMLP

SUMMARY = "a CSV/TSV/JSONL table of feature columns and a label column -> MLP with the tabular transform in the graph"
DEFAULTS = FitConfig(epochs=60, batch_size=64, lr=3e-3, weight_decay=1e-4, patience=8)


@dataclass(frozen=True)
class TableData:
    table: Table
    feature_columns: list[str]
    kinds: dict[str, str]
    split: Split
    transform: TabularTransform
    labels: list[str | None]
    """Per row: the label text (None when the task trains without labels)."""


def load_table_data(options: FitOptions, label_column: str | None, stratify: bool) -> TableData:
    """Read, check columns, decide kinds, split, and fit the transform on the training rows."""
    table = read_table(options.data)
    labels: list[str | None] = [None] * len(table)
    if label_column is not None:
        raw = table.column(label_column, "label")
        empty = [table.where(i) for i, v in enumerate(raw) if is_missing(v)]
        if empty:
            raise DataError(f"empty label in column {label_column!r} at {first_few(empty)}")
        labels = [str(v).strip() for v in raw]
    if options.split_column is not None:
        table.column(options.split_column, "split")
    excluded = {label_column, options.split_column}
    feature_columns = [c for c in table.columns if c not in excluded]
    if not feature_columns:
        raise DataError(f"{table.path}: no feature columns besides {', '.join(c for c in excluded if c)}")
    kinds = column_kinds(table, feature_columns)
    split = split_rows(
        len(table),
        options,
        labels=[str(v) for v in labels] if stratify else None,
        keys=row_keys(table, feature_columns),
        split_values=table.cells[options.split_column] if options.split_column else None,
        where=table.where,
    )
    transform = fit_transform(table, feature_columns, kinds, split.train, options.max_categories)
    return TableData(table, feature_columns, kinds, split, transform, labels)


def transformed(x: np.ndarray, transform: TabularTransform) -> np.ndarray:
    """The graph's transform in numpy, for the classical baselines (same imputation and scaling)."""
    offset = 0
    numeric_cols: list[int] = []
    categorical_cols: list[int] = []
    for column in transform.schema.columns:
        target = numeric_cols if column.kind == "numeric" else categorical_cols
        target += range(offset, offset + column.width)
        offset += column.width
    raw = x[:, numeric_cols]
    missing = np.isnan(raw)
    filled = np.where(missing, transform.median, raw)
    parts = [(filled - transform.mean) / transform.std, missing.astype(np.float32), x[:, categorical_cols]]
    return np.concatenate(parts, axis=1)


def baselines(x: np.ndarray, y: np.ndarray, data: TableData, seed: int) -> dict[str, Any]:
    split = data.split
    features_t = transformed(x, data.transform)
    logistic = LogisticRegression(max_iter=1000).fit(features_t[split.train], y[split.train])
    boosting = HistGradientBoostingClassifier(random_state=seed).fit(x[split.train], y[split.train])
    return {
        "name": "logistic regression (same transform) | gradient boosting (raw features)",
        "logistic_regression": classification_metrics(y[split.test], logistic.predict(features_t[split.test])),
        "gradient_boosting": classification_metrics(y[split.test], boosting.predict(x[split.test])),
    }


def config_tabular(data: TableData) -> str:
    return "; ".join(data.transform.describe())


@dataclass(frozen=True)
class LabelledTable:
    """What `load` checked and prepared: the table, its classes, and the feature matrix in schema order."""

    data: TableData
    label_column: str
    labels: list[str]
    x: np.ndarray
    y: np.ndarray


def load(options: FitOptions) -> LabelledTable:
    label_column = options.label_column or "label"
    data = load_table_data(options, label_column, stratify=True)
    text_labels = [str(v) for v in data.labels]
    labels = common.class_labels(text_labels, f"{options.data} column {label_column!r}")
    y = np.asarray([labels.index(v) for v in text_labels], dtype=np.int64)
    x = features(data.table, data.transform.schema, np.arange(len(data.table)))
    return LabelledTable(data, label_column, labels, x, y)


def evaluate(loaded: LabelledTable, options: FitOptions, version_dir: Path) -> dict[str, Any]:
    test = loaded.data.split.test
    test_x, test_y = loaded.x[test], loaded.y[test]
    (probabilities,) = run_in_batches(open_session(version_dir), {loaded.data.transform.schema.input: test_x})
    return {"split": "test", "n": len(test_y), **common.classification(test_y, probabilities)}


def publish(loaded: LabelledTable, options: FitOptions, started: float) -> TrainResult:
    data, labels, x, y, label_column = loaded.data, loaded.labels, loaded.x, loaded.y, loaded.label_column
    schema, split = data.transform.schema, data.split
    generator = common.seed(options)
    mlp = MLPConfig(
        n_features=schema.n_features, n_classes=len(labels), width=options.width or 128, layers=options.layers or 2
    )
    model = TabularMLP(mlp, TabularInput(data.transform))
    config = common.fit_config(DEFAULTS, options)
    result = common.train(
        model,
        common.classify_step,
        common.loader([x[split.train], y[split.train]], config.batch_size, True, generator),
        common.loader([x[split.val], y[split.val]], config.batch_size, False, generator),
        config,
        options,
    )
    model_config = ModelConfig(
        name=options.name,
        task="tabular-classification",
        description=f"Tabular classifier trained with `nnserve-train fit` on {options.data.name}.",
        inputs=[TensorSpec(name=schema.input, datatype="FP32", shape=[-1, schema.n_features])],
        outputs=[TensorSpec(name="probabilities", datatype="FP32", shape=[-1, len(labels)])],
        batching=BatchingSettings(max_batch_size=64, max_queue_delay_ms=0.0),
        tabular=schema,
        classification=ClassificationSettings(labels=labels, probabilities="probabilities"),
        parameters={"hyperparameters": common.hyper(mlp)},
    )
    release = FitRelease(
        config=model_config,
        export=ExportSpec(
            module=Probabilities(model),
            make_inputs=random_features(schema, data.transform),
            output_names=["probabilities"],
            dynamic_axes={schema.input: {0: "batch"}},
            metadata={"model": options.name, "labels": labels, "hyperparameters": common.hyper(mlp)},
        ),
        fit=result,
        fit_config=config,
        hyperparameters=common.hyper(mlp),
        card=CardText(
            data=(
                f"`{options.data}`: {len(data.table)} rows, {len(data.feature_columns)} feature columns, label "
                f"column `{label_column}` with classes {', '.join(labels)}. Split: {split.describe()}."
            ),
            architecture=(
                "The graph's first layer is the tabular transform fitted on the training split: missing numbers "
                "imputed with the training median, a missing indicator per numeric column, standardisation "
                f"with training mean/std, one-hot string columns passed through. Then {mlp.layers} x "
                f"(linear {mlp.width}, batch norm, ReLU, dropout {mlp.dropout}), linear, softmax in the graph. "
                f"Columns: {config_tabular(data)}."
            ),
            evaluation=(
                f"The held-out test split ({len(split.test)} rows): accuracy and macro F1. `baseline.*`: logistic "
                "regression on the same transformed features, and gradient boosting (scikit-learn "
                "HistGradientBoosting, missing values native) on the raw feature vector, both fit on the same "
                "training split."
            ),
            craft=["loss: cross-entropy"],
        ),
        evaluate=lambda version_dir: evaluate(loaded, options, version_dir),
        baseline=baselines(x, y, data, options.seed),
        data=common.data_summary(split, "table", rows=len(data.table), columns=data.kinds, classes=labels),
    )
    return publish_fit(release, options, started)
