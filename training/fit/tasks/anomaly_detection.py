"""anomaly-detection: images -> a convolutional autoencoder; a table -> a dense autoencoder.

Which one follows the data: a folder, or a CSV with a `--path-column` column, is images; any other
table is rows. The score is the reconstruction error, computed inside the graph. Only normal training
items train the model; the threshold is the `--threshold-percentile` of the validation normal scores.
With labels (class folders, or `--label-column`) and `--normal-label`, the held-out anomalies give AUROC.

The image autoencoder works in the served `value_range` and its score is the mean squared error between
its `reconstruction` and the input in those units. Decoded files are served in 0..1: at 0..255 float32
rounding of the score alone breaks the 1e-4 parity limit (as for image-generation's 0..1 output).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from torch import nn

from service.schema.config import AnomalySettings, BatchingSettings, ImagePreprocessing, ModelConfig, TensorSpec
from training.augment import PixelDropout
from training.card import CardText
from training.evaluate import open_session, run_in_batches
from training.export import METADATA_PREFIX, ExportSpec
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
from training.fit.tasks.tabular_classification import TableData, load_table_data, transformed
from training.loop import FitConfig, StepOutput
from training.models.conv_autoencoder import ConvAEConfig, ConvAutoencoder, ImageAnomalyScorer
from training.models.mlp import DenseAEConfig, DenseAutoencoder, TabularAnomalyScorer

SUMMARY = "normal images or rows (optionally labelled) -> conv or dense autoencoder, score = reconstruction error"
DEFAULTS = FitConfig(epochs=60, batch_size=64, lr=3e-3, weight_decay=1e-4, patience=8)
NORMAL, ANOMALY = "normal", "anomaly"
SERVED_RANGE = (0.0, 1.0)
"""Where decoded files (0..255) are served; a preset's arrays keep their own `value_range`."""
THRESHOLD_KEY = "anomaly_threshold"
"""ONNX metadata key holding the version's own threshold (config.yaml holds the latest version's)."""


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


def _detected(labels: list[str] | None, flagged: np.ndarray, options: FitOptions) -> dict[str, float]:
    """Per anomaly label among the test items: the share scoring above the threshold."""
    if labels is None:
        return {}
    kinds = np.asarray(labels)
    return {
        kind: float(flagged[kinds == kind].mean()) for kind in dict.fromkeys(labels) if kind != options.normal_label
    }


def _threshold_rule(options: FitOptions) -> str:
    return (
        f"{options.threshold_percentile:g}th percentile of the anomaly score over the validation split's normal items"
    )


@dataclass(frozen=True)
class AnomalyImages:
    """What `load` checked and prepared from images: decoded pixels, normal/anomaly flags, the split."""

    images: DecodedImages
    flags: list[str] | None
    """Per image `normal` or `anomaly`; None when unlabelled (every image normal)."""
    split: Split
    served: ImagePreprocessing
    """The served settings: pixels stored in `images.settings.value_range` are fed in `served.value_range`."""

    def to_served(self, pixels: Any) -> Any:
        """Stored pixels (a float array or tensor) mapped linearly onto the served range."""
        (stored_low, stored_high), (low, high) = self.images.settings.value_range, self.served.value_range
        return (pixels - stored_low) * ((high - low) / (stored_high - stored_low)) + low

    def served_pixels(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.to_served(self.images.pixels[rows].astype(np.float32)), dtype=np.float32)


@dataclass(frozen=True)
class AnomalyTable:
    """What `load` checked and prepared from a table: the transform fitted on normal training rows, flags."""

    data: TableData
    flags: list[str] | None
    x: np.ndarray
    """Every row's feature vector in schema order."""


def prepare_images(images: DecodedImages, options: FitOptions, served: ImagePreprocessing) -> AnomalyImages:
    """Flags and the split (stratified by flag, or from the split values) of decoded or bundled images."""
    flags = _anomaly_flags(images.labels, options, str(options.data))
    split = split_rows(
        len(images.pixels),
        options,
        labels=flags,
        keys=content_keys(images.pixels),
        split_values=images.split_values,
        where=lambda i: str(images.files[i]),
    )
    return AnomalyImages(images, flags, split, served)


def load_images(options: FitOptions) -> AnomalyImages:
    """The user's images, checked and decoded (0..255), served to the model in 0..1."""
    source = list_images(options.data, options)
    _anomaly_flags(source.labels, options, str(options.data))
    images = decode_images(source, options)
    return prepare_images(images, options, images.settings.model_copy(update={"value_range": SERVED_RANGE}))


def load_table(options: FitOptions) -> AnomalyTable:
    data = load_table_data(options, options.label_column, stratify=options.label_column is not None)
    flags = _anomaly_flags([str(v) for v in data.labels] if options.label_column else None, options, str(options.data))
    train_rows = _normal_rows(data.split.train, flags)
    transform = fit_transform(data.table, data.feature_columns, data.kinds, train_rows, options.max_categories)
    x = features(data.table, transform.schema, np.arange(len(data.table)))
    return AnomalyTable(replace(data, transform=transform), flags, x)


def load(options: FitOptions) -> AnomalyImages | AnomalyTable:
    return load_images(options) if _is_images(options) else load_table(options)


def _is_anomaly(flags: list[str] | None, rows: np.ndarray) -> np.ndarray | None:
    return None if flags is None else np.asarray([flags[i] == ANOMALY for i in rows], dtype=np.int64)


def evaluate(loaded: AnomalyImages | AnomalyTable, options: FitOptions, version_dir: Path) -> dict[str, Any]:
    """Test metrics of an exported version at its own threshold (from the graph's metadata)."""
    session = open_session(version_dir)
    threshold = float(session.get_modelmeta().custom_metadata_map[METADATA_PREFIX + THRESHOLD_KEY])
    if isinstance(loaded, AnomalyImages):
        test = loaded.split.test
        feeds = {"pixels": loaded.served_pixels(test)}
        labels = loaded.images.labels
    else:
        test = loaded.data.split.test
        feeds = {loaded.data.transform.schema.input: loaded.x[test]}
        labels = [str(v) for v in loaded.data.labels] if loaded.flags is not None else None
    scores = run_in_batches(session, feeds)[0]
    metrics: dict[str, Any] = {
        "split": "test",
        "n": len(test),
        **common.anomaly_metrics(scores, _is_anomaly(loaded.flags, test), threshold),
    }
    detected = _detected(None if labels is None else [labels[i] for i in test], scores > threshold, options)
    return {**metrics, "detected": detected} if detected else metrics


def publish(loaded: AnomalyImages | AnomalyTable, options: FitOptions, started: float) -> TrainResult:
    if isinstance(loaded, AnomalyImages):
        return _publish_images(loaded, options, started)
    return _publish_table(loaded, options, started)


def _corruption(options: FitOptions, settings: ImagePreprocessing) -> PixelDropout | None:
    """`--denoise`: lost pixels take the background level (the bright end for dark ink on light)."""
    if options.denoise <= 0.0:
        return None
    return PixelDropout(options.denoise, background=1.0 if settings.channels == 1 and settings.ink == "dark" else 0.0)


def _publish_images(loaded: AnomalyImages, options: FitOptions, started: float) -> TrainResult:
    images, flags, split, settings = loaded.images, loaded.flags, loaded.split, loaded.served
    x = images.pixels
    train_rows, val_rows = _normal_rows(split.train, flags), _normal_rows(split.val, flags)
    ae = ConvAEConfig(
        image_size=settings.height,
        channels=settings.channels,
        width=options.width or 16,
        value_range=settings.value_range,
    )
    generator = common.seed(options)
    model = ConvAutoencoder(ae)
    config = common.fit_config(DEFAULTS, options)
    corrupt = _corruption(options, settings)

    def step(net: nn.Module, batch: tuple[torch.Tensor]) -> StepOutput:
        clean = model.unit(loaded.to_served(batch[0].float()))  # (B, C, H, W) in 0..1
        noisy = corrupt(clean, generator) if corrupt is not None and net.training else clean
        return StepOutput(nn.functional.mse_loss(net(noisy), clean), len(clean))

    result = common.train(
        model,
        step,
        common.loader([x[train_rows]], config.batch_size, True, generator),
        common.loader([x[val_rows]], config.batch_size, False, generator),
        config,
        options,
    )
    scorer = ImageAnomalyScorer(model).eval()
    threshold = _threshold(_scores(scorer, loaded.served_pixels(val_rows)), options)
    shape = [-1, settings.channels, settings.height, settings.width]
    low, high = settings.value_range

    def random_pixels(batch: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        return {"pixels": low + torch.rand(batch, *shape[1:], generator=gen) * (high - low)}

    def unit_rows(rows: np.ndarray) -> np.ndarray:
        return (loaded.served_pixels(rows).reshape(len(rows), -1) - low) / (high - low)

    hyperparameters = common.hyper(ae)
    craft = ["loss: mean squared reconstruction error of the clean image (pixels scaled to 0..1)"]
    if corrupt is not None:
        craft.append(corrupt.describe())
    craft.append(f"threshold {threshold:.4g}: {_threshold_rule(options)}")
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
            metadata={"model": options.name, "hyperparameters": hyperparameters, THRESHOLD_KEY: threshold},
        ),
        fit=result,
        fit_config=config,
        hyperparameters=hyperparameters,
        card=CardText(
            data=(
                f"{images.layout} (`{options.data}`): {len(x)} images, {len(images.skipped)} unreadable skipped"
                + (f"; normal label `{options.normal_label}`" if flags else "; all normal")
                + f". Trained on {len(train_rows)} normal training images. Split: {split.describe()}."
            ),
            architecture=(
                f"Input mapped from the served range {low:g}..{high:g} onto 0..1 in the graph; convolutional "
                f"autoencoder (strided conv encoder to a {ae.latent}-d code, transposed-conv decoder, sigmoid), "
                f"reconstruction mapped back to {low:g}..{high:g}; `score` = per-image mean squared error "
                f"between `reconstruction` and the input in those units, computed in the graph."
            ),
            evaluation=(
                "The held-out test split: AUROC (when labelled anomalies are held out), precision and "
                "recall at the threshold, the share of normal items flagged, and `detected.<label>`: the "
                "share of each anomaly label flagged. `baseline.*`: IsolationForest on the pixels of the "
                "same normal training images."
            ),
            craft=craft,
        ),
        evaluate=lambda version_dir: evaluate(loaded, options, version_dir),
        baseline=_isolation_forest(
            unit_rows(train_rows), unit_rows(split.test), _is_anomaly(flags, split.test), options.seed
        ),
        data=common.data_summary(
            split,
            images.layout,
            images=len(x),
            skipped_unreadable=len(images.skipped),
            normal_training_items=len(train_rows),
        ),
        extra_metrics={"threshold": threshold, "threshold_rule": _threshold_rule(options), "denoise": options.denoise},
    )
    return publish_fit(release, options, started)


def _publish_table(loaded: AnomalyTable, options: FitOptions, started: float) -> TrainResult:
    data, flags, x = loaded.data, loaded.flags, loaded.x
    split, transform = data.split, data.transform
    schema = transform.schema
    train_rows, val_rows = _normal_rows(split.train, flags), _normal_rows(split.val, flags)
    ae = DenseAEConfig(n_features=schema.n_features, width=options.width or 64)
    generator = common.seed(options)
    model = DenseAutoencoder(ae, TabularInput(transform))
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
            metadata={"model": options.name, "hyperparameters": hyperparameters, THRESHOLD_KEY: threshold},
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
                "recall at the threshold, the share of normal rows flagged, and `detected.<label>`: the "
                "share of each anomaly label flagged. `baseline.*`: IsolationForest on the same "
                "transformed normal training rows."
            ),
            craft=["loss: mean squared reconstruction error", f"threshold {threshold:.4g}: {_threshold_rule(options)}"],
        ),
        evaluate=lambda version_dir: evaluate(loaded, options, version_dir),
        baseline=_isolation_forest(t[train_rows], t[split.test], _is_anomaly(flags, split.test), options.seed),
        data=common.data_summary(
            split, "table", rows=len(data.table), columns=data.kinds, normal_training_items=len(train_rows)
        ),
        extra_metrics={"threshold": threshold, "threshold_rule": _threshold_rule(options)},
    )
    return publish_fit(release, options, started)
