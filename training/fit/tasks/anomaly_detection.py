"""anomaly-detection: images -> a convolutional autoencoder; a table -> a dense autoencoder.

Which one follows the data: a folder, or a CSV with a `--path-column` column, is images; any other
table is rows. The score is the reconstruction error, computed inside the graph. Only normal training
items train the model; the threshold is the `--threshold-percentile` of the validation normal scores.
With labels (class folders, or `--label-column`) and `--normal-label`, the held-out anomalies give AUROC.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from torch import nn

from service.schema.config import AnomalySettings, BatchingSettings, ModelConfig, TensorSpec
from training.card import CardText
from training.evaluate import open_session, run_in_batches
from training.export import ExportSpec
from training.family import TrainResult
from training.fit import common
from training.fit.errors import DataError
from training.fit.images import DecodedImages, decode_images, list_images
from training.fit.options import FitOptions
from training.fit.release import FitRelease, publish_fit
from training.fit.split import Split, split_rows
from training.fit.tables import TABLE_SUFFIXES, read_table
from training.fit.tabular import TabularInput, features, fit_transform, random_features
from training.fit.tasks.image_classification import content_keys
from training.fit.tasks.tabular_classification import load_table_data, transformed
from training.loop import FitConfig, StepOutput
from training.models.conv_autoencoder import ConvAEConfig, ConvAutoencoder, ImageAnomalyScorer
from training.models.mlp import DenseAEConfig, DenseAutoencoder, TabularAnomalyScorer

SUMMARY = "normal images or rows (optionally labelled) -> conv or dense autoencoder, score = reconstruction error"
DEFAULTS = FitConfig(epochs=60, batch_size=64, lr=3e-3, weight_decay=1e-4, patience=8)
NORMAL, ANOMALY = "normal", "anomaly"


def _is_images(options: FitOptions) -> bool:
    if options.data.is_dir():
        return True
    if options.data.suffix.lower() not in TABLE_SUFFIXES:
        raise DataError(f"{options.data}: expected a folder of images or a table ({', '.join(TABLE_SUFFIXES)})")
    return options.path_column in read_table(options.data).columns


def _anomaly_flags(labels: list[str] | None, options: FitOptions, where: str) -> list[str] | None:
    """Per item `normal` or `anomaly`, or None when every item is normal (no labels)."""
    if labels is None:
        if options.normal_label is not None:
            raise DataError(f"{where}: --normal-label {options.normal_label!r} given, but the data has no labels")
        return None
    if options.normal_label is None:
        distinct = sorted(set(labels))
        raise DataError(
            f"{where}: the data is labelled ({', '.join(distinct[:10])}); say which label is normal with --normal-label"
        )
    if options.normal_label not in set(labels):
        raise DataError(
            f"{where}: --normal-label {options.normal_label!r} is not among the labels "
            f"{', '.join(sorted(set(labels))[:10])}"
        )
    return [NORMAL if label == options.normal_label else ANOMALY for label in labels]


def _normal_rows(rows: np.ndarray, flags: list[str] | None) -> np.ndarray:
    return rows if flags is None else rows[[flags[i] == NORMAL for i in rows]]


def _threshold(scores: np.ndarray, options: FitOptions) -> float:
    return float(np.percentile(scores, options.threshold_percentile))


def _scores(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = [module(torch.from_numpy(x[s : s + 256]).float()) for s in range(0, len(x), 256)]
    return np.concatenate([(o[0] if isinstance(o, tuple) else o).numpy() for o in out])


def _isolation_forest(train: np.ndarray, test: np.ndarray, is_anomaly: np.ndarray | None, seed: int) -> dict[str, Any]:
    forest = IsolationForest(random_state=seed).fit(train)
    scores = -forest.score_samples(test)
    out: dict[str, Any] = {"name": "isolation forest (same inputs)"}
    if is_anomaly is not None and is_anomaly.min() != is_anomaly.max():
        out["auroc"] = float(roc_auc_score(is_anomaly, scores))
    return out


def _threshold_rule(options: FitOptions) -> str:
    return (
        f"{options.threshold_percentile:g}th percentile of the anomaly score over the validation split's normal items"
    )


def run(options: FitOptions) -> TrainResult:
    return _run_images(options) if _is_images(options) else _run_table(options)


def load_image_split(options: FitOptions) -> tuple[DecodedImages, list[str] | None, Split]:
    """Decoded images, `normal`/`anomaly` per image (None when unlabelled), and the split stratified by it."""
    source = list_images(options.data, options)
    _anomaly_flags(source.labels, options, str(options.data))
    images = decode_images(source, options)
    flags = _anomaly_flags(images.labels, options, str(options.data))
    split = split_rows(
        len(images.pixels),
        options,
        labels=flags,
        keys=content_keys(images.pixels),
        split_values=images.split_values,
        where=lambda i: str(images.files[i]),
    )
    return images, flags, split


def _run_images(options: FitOptions) -> TrainResult:
    started = time.perf_counter()
    images, flags, split = load_image_split(options)
    x, settings = images.pixels, images.settings
    train_rows, val_rows = _normal_rows(split.train, flags), _normal_rows(split.val, flags)
    ae = ConvAEConfig(image_size=settings.height, channels=settings.channels, width=options.width or 16)
    model = ConvAutoencoder(ae)
    generator = common.seed(options)
    config = common.fit_config(DEFAULTS, options)

    def step(net: nn.Module, batch: tuple[torch.Tensor]) -> StepOutput:
        pixels = batch[0].float()
        return StepOutput(nn.functional.mse_loss(net(pixels), pixels / 255.0), len(pixels))

    result = common.train(
        model,
        step,
        common.loader([x[train_rows]], config.batch_size, True, generator),
        common.loader([x[val_rows]], config.batch_size, False, generator),
        config,
        options,
    )
    scorer = ImageAnomalyScorer(model).eval()
    threshold = _threshold(_scores(scorer, x[val_rows]), options)
    shape = [-1, settings.channels, settings.height, settings.width]
    test_x = x[split.test].astype(np.float32)
    is_anomaly = None if flags is None else np.asarray([flags[i] == ANOMALY for i in split.test], dtype=np.int64)

    def evaluate(version_dir: Path) -> dict[str, Any]:
        scores, _ = run_in_batches(open_session(version_dir), {"pixels": test_x})
        return {"split": "test", "n": len(test_x), **common.anomaly_metrics(scores, is_anomaly, threshold)}

    def random_pixels(batch: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        return {"pixels": torch.rand(batch, *shape[1:], generator=gen) * 255.0}

    hyperparameters = common.hyper(ae)
    flat = x.reshape(len(x), -1).astype(np.float32) / 255.0
    release = FitRelease(
        config=ModelConfig(
            name=options.name,
            task="anomaly-detection",
            description=f"Image anomaly detector (convolutional autoencoder) trained on {options.data.name}.",
            inputs=[TensorSpec(name="pixels", datatype="FP32", shape=shape)],
            outputs=[
                TensorSpec(name="score", datatype="FP32", shape=[-1]),
                TensorSpec(name="reconstruction", datatype="FP32", shape=shape),
            ],
            batching=BatchingSettings(max_batch_size=64, max_queue_delay_ms=0.0),
            image=settings,
            anomaly=AnomalySettings(
                score="score",
                reconstruction="reconstruction",
                threshold=threshold,
                threshold_rule=_threshold_rule(options),
            ),
            parameters={"hyperparameters": hyperparameters},
        ),
        export=ExportSpec(
            module=scorer,
            make_inputs=random_pixels,
            output_names=["score", "reconstruction"],
            dynamic_axes={"pixels": {0: "batch"}},
            metadata={"model": options.name, "hyperparameters": hyperparameters, "anomaly_threshold": threshold},
        ),
        fit=result,
        fit_config=config,
        hyperparameters=hyperparameters,
        card=CardText(
            data=(
                f"{images.layout} at `{options.data}`: {len(x)} images, {len(images.skipped)} unreadable skipped"
                + (f"; normal label `{options.normal_label}`" if flags else "; all normal")
                + f". Trained on {len(train_rows)} normal training images. Split: {split.describe()}."
            ),
            architecture=(
                "Convolutional autoencoder (strided conv encoder to a "
                f"{ae.latent}-d code, transposed-conv decoder, sigmoid); `score` = per-image mean squared "
                "error in the 0..1 pixel scale, computed in the graph."
            ),
            evaluation=(
                "The held-out test split: AUROC (when labelled anomalies are held out), precision and "
                "recall at the threshold, and the share of normal items flagged. `baseline.*`: "
                "IsolationForest on the pixels of the same normal training images."
            ),
            craft=["loss: mean squared reconstruction error", f"threshold {threshold:.4g}: {_threshold_rule(options)}"],
        ),
        evaluate=evaluate,
        baseline=_isolation_forest(flat[train_rows], flat[split.test], is_anomaly, options.seed),
        data=common.data_summary(
            split,
            images.layout,
            images=len(x),
            skipped_unreadable=len(images.skipped),
            normal_training_items=len(train_rows),
        ),
        extra_metrics={"threshold": threshold, "threshold_rule": _threshold_rule(options)},
    )
    return publish_fit(release, options, started)


def _run_table(options: FitOptions) -> TrainResult:
    started = time.perf_counter()
    data = load_table_data(options, options.label_column, stratify=options.label_column is not None)
    flags = _anomaly_flags([str(v) for v in data.labels] if options.label_column else None, options, str(options.data))
    split: Split = data.split
    train_rows, val_rows = _normal_rows(split.train, flags), _normal_rows(split.val, flags)
    transform = fit_transform(data.table, data.feature_columns, data.kinds, train_rows, options.max_categories)
    data = replace(data, transform=transform)
    schema = transform.schema
    x = features(data.table, schema, np.arange(len(data.table)))
    ae = DenseAEConfig(n_features=schema.n_features, width=options.width or 64)
    model = DenseAutoencoder(ae, TabularInput(transform))
    generator = common.seed(options)
    config = common.fit_config(DEFAULTS, options)

    def step(net: nn.Module, batch: tuple[torch.Tensor]) -> StepOutput:
        target, reconstruction = net(batch[0])
        return StepOutput(nn.functional.mse_loss(reconstruction, target), len(target))

    result = common.train(
        model,
        step,
        common.loader([x[train_rows]], config.batch_size, True, generator),
        common.loader([x[val_rows]], config.batch_size, False, generator),
        config,
        options,
    )
    scorer = TabularAnomalyScorer(model).eval()
    threshold = _threshold(_scores(scorer, x[val_rows]), options)
    test_x = x[split.test]
    is_anomaly = None if flags is None else np.asarray([flags[i] == ANOMALY for i in split.test], dtype=np.int64)

    def evaluate(version_dir: Path) -> dict[str, Any]:
        (scores,) = run_in_batches(open_session(version_dir), {schema.input: test_x})
        return {"split": "test", "n": len(test_x), **common.anomaly_metrics(scores, is_anomaly, threshold)}

    hyperparameters = common.hyper(ae)
    t = transformed(x, transform)
    release = FitRelease(
        config=ModelConfig(
            name=options.name,
            task="anomaly-detection",
            description=f"Tabular anomaly detector (dense autoencoder) trained on {options.data.name}.",
            inputs=[TensorSpec(name=schema.input, datatype="FP32", shape=[-1, schema.n_features])],
            outputs=[TensorSpec(name="score", datatype="FP32", shape=[-1])],
            batching=BatchingSettings(max_batch_size=64, max_queue_delay_ms=0.0),
            tabular=schema,
            anomaly=AnomalySettings(score="score", threshold=threshold, threshold_rule=_threshold_rule(options)),
            parameters={"hyperparameters": hyperparameters},
        ),
        export=ExportSpec(
            module=scorer,
            make_inputs=random_features(schema, transform),
            output_names=["score"],
            dynamic_axes={schema.input: {0: "batch"}},
            metadata={"model": options.name, "hyperparameters": hyperparameters, "anomaly_threshold": threshold},
        ),
        fit=result,
        fit_config=config,
        hyperparameters=hyperparameters,
        card=CardText(
            data=(
                f"`{options.data}`: {len(data.table)} rows, {len(data.feature_columns)} feature columns"
                + (f"; normal label `{options.normal_label}` in `{options.label_column}`" if flags else "; all normal")
                + f". Trained on {len(train_rows)} normal training rows. Split: {split.describe()}."
            ),
            architecture=(
                "The tabular transform as the graph's first layer (see tabular-classification), then a "
                f"dense autoencoder (linear {ae.width}, ReLU, dropout, linear to the code, and back); "
                "`score` = mean squared error of the transformed row, computed in the graph. "
                f"Columns: {'; '.join(transform.describe())}."
            ),
            evaluation=(
                "The held-out test split: AUROC (when labelled anomalies are held out), precision and "
                "recall at the threshold, and the share of normal rows flagged. `baseline.*`: "
                "IsolationForest on the same transformed normal training rows."
            ),
            craft=["loss: mean squared reconstruction error", f"threshold {threshold:.4g}: {_threshold_rule(options)}"],
        ),
        evaluate=evaluate,
        baseline=_isolation_forest(t[train_rows], t[split.test], is_anomaly, options.seed),
        data=common.data_summary(
            split, "table", rows=len(data.table), columns=data.kinds, normal_training_items=len(train_rows)
        ),
        extra_metrics={"threshold": threshold, "threshold_rule": _threshold_rule(options)},
    )
    return publish_fit(release, options, started)
