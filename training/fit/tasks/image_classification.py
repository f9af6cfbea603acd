"""image-classification: a folder of class folders (or a CSV of path,label) -> the scaled CNN.

The bundled digits-cnn is this task on scikit-learn's digits (training/presets/digits_cnn.py): its
`load` hands `publish` the same `LabelledImages` that `load` builds from a user's folder.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from service.schema.config import BatchingSettings, ClassificationSettings, ModelConfig, TensorSpec
from training.augment import AffineJitter
from training.card import CardText
from training.evaluate import classification_metrics, open_session, run_in_batches
from training.export import ExportSpec
from training.family import TrainResult
from training.fit import common
from training.fit.errors import DataError
from training.fit.images import VALUE_RANGE, DecodedImages, decode_images, list_images
from training.fit.options import FitOptions
from training.fit.release import FitRelease, publish_fit
from training.fit.split import Split, split_rows
from training.loop import FitConfig, Step, StepOutput
from training.models.heads import Probabilities
from training.models.scaled_cnn import ScaledCNN, ScaledCNNConfig

SUMMARY = "images in class folders (or a CSV of path,label) -> CNN scaled to the image size"
DEFAULTS = FitConfig(epochs=30, batch_size=64, lr=3e-3, weight_decay=5e-4, patience=5)
BASELINE = "logistic regression on pixels"
BASELINE_MAX_TRAIN = 20_000
"""The baseline fits on at most this many training images (a random subset beyond), to stay quick."""
JITTER = AffineJitter()


@dataclass(frozen=True)
class LabelledImages:
    """What `load` checked and prepared: the decoded images, class names, label indices and the split."""

    images: DecodedImages
    labels: list[str]
    y: np.ndarray
    split: Split


def content_keys(pixels: np.ndarray) -> list[bytes]:
    """A digest of each decoded image: equal pixels = the same item, whatever the file name."""
    return [hashlib.blake2b(p.tobytes(), digest_size=16).digest() for p in pixels]


def class_names(labels: list[str] | None, options: FitOptions) -> list[str]:
    """The sorted classes; a DataError for unlabelled images (a flat folder) or a single class."""
    if labels is None:
        raise DataError(f"{options.data}: a flat folder has no labels; use class folders PATH/<label>/<file>")
    return common.class_labels(labels, str(options.data))


def labelled(images: DecodedImages, options: FitOptions) -> LabelledImages:
    """Class names, label indices and the split (stratified, or the images' split values) of decoded images."""
    labels = class_names(images.labels, options)
    assert images.labels is not None
    y = np.asarray([labels.index(label) for label in images.labels], dtype=np.int64)
    split = split_rows(
        len(y),
        options,
        labels=images.labels,
        keys=content_keys(images.pixels),
        split_values=images.split_values,
        where=lambda i: str(images.files[i]),
    )
    return LabelledImages(images, labels, y, split)


def load_labelled(options: FitOptions) -> tuple[DecodedImages, list[str], np.ndarray, Split]:
    """Images, class names, label indices and the split, for any image task that needs labels."""
    source = list_images(options.data, options)
    class_names(source.labels, options)  # refused before anything is decoded
    loaded = labelled(decode_images(source, options), options)
    return loaded.images, loaded.labels, loaded.y, loaded.split


def load(options: FitOptions) -> LabelledImages:
    return LabelledImages(*load_labelled(options))


def unit_scale(pixels: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Served values lo..hi -> 0..1 float32, as `PixelScaling` does inside the graph."""
    lo, hi = value_range
    return (pixels.astype(np.float32) - lo) / (hi - lo)


def channel_stats(
    pixels: np.ndarray, value_range: tuple[float, float] = VALUE_RANGE
) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the training pixels mapped from `value_range` to 0..1 (std floored at 1e-3)."""
    lo, hi = value_range
    mean = (pixels.mean(axis=(0, 2, 3), dtype=np.float64) - lo) / (hi - lo)
    std = pixels.std(axis=(0, 2, 3), dtype=np.float64) / (hi - lo)
    return [float(m) for m in mean], [float(max(s, 1e-3)) for s in std]


def pixel_baseline(
    x: np.ndarray, y: np.ndarray, split: Split, seed: int, value_range: tuple[float, float] = VALUE_RANGE
) -> dict[str, Any]:
    train = split.train
    if len(train) > BASELINE_MAX_TRAIN:
        train = np.sort(np.random.default_rng(seed).choice(train, BASELINE_MAX_TRAIN, replace=False))

    def flat(rows: np.ndarray) -> np.ndarray:
        return unit_scale(x[rows], value_range).reshape(len(rows), -1)

    model = LogisticRegression(max_iter=300).fit(flat(train), y[train])
    predicted = model.predict(flat(split.test))
    return {"name": BASELINE, **classification_metrics(y[split.test], predicted)}


def augmented_step(jitter: AffineJitter, generator: torch.Generator) -> Step:
    """`common.classify_step` on training batches jittered afresh (validation batches as they are)."""

    def step(net: nn.Module, batch: tuple[torch.Tensor, ...]) -> StepOutput:
        x, y = batch
        x = x.float()
        return common.classify_step(net, (jitter(x, generator) if net.training else x, y))

    return step


def evaluate(loaded: LabelledImages, options: FitOptions, version_dir: Path) -> dict[str, Any]:
    test = loaded.split.test
    test_x, test_y = loaded.images.pixels[test].astype(np.float32), loaded.y[test]
    (probabilities,) = run_in_batches(open_session(version_dir), {"pixels": test_x})
    return {"split": "test", "n": len(test_y), **common.classification(test_y, probabilities)}


def publish(loaded: LabelledImages, options: FitOptions, started: float) -> TrainResult:
    images, labels, y, split = loaded.images, loaded.labels, loaded.y, loaded.split
    x, settings = images.pixels, images.settings
    lo, hi = settings.value_range
    mean, std = channel_stats(x[split.train], settings.value_range)
    generator = common.seed(options)
    cnn = ScaledCNNConfig(
        image_size=settings.height,
        channels=settings.channels,
        n_classes=len(labels),
        width=options.width or 32,
        blocks=options.layers,
        value_range=settings.value_range,
        mean=mean,
        std=std,
    )
    model = ScaledCNN(cnn)
    config = common.fit_config(DEFAULTS, options)
    augment = options.augment == "affine"
    result = common.train(
        model,
        augmented_step(JITTER, generator) if augment else common.classify_step,
        common.loader([x[split.train], y[split.train]], config.batch_size, True, generator),
        common.loader([x[split.val], y[split.val]], config.batch_size, False, generator),
        config,
        options,
    )
    shape = [-1, settings.channels, settings.height, settings.width]
    model_config = ModelConfig(
        name=options.name,
        task="image-classification",
        description=f"Image classifier trained with `nnserve-train fit` on {options.data.name} "
        f"({len(labels)} classes).",
        inputs=[TensorSpec(name="pixels", datatype="FP32", shape=shape)],
        outputs=[TensorSpec(name="probabilities", datatype="FP32", shape=[-1, len(labels)])],
        batching=BatchingSettings(max_batch_size=64, max_queue_delay_ms=0.0),
        image=settings,
        classification=ClassificationSettings(labels=labels, probabilities="probabilities"),
        parameters={"hyperparameters": common.hyper(cnn)},
    )

    def random_pixels(batch: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        return {"pixels": lo + torch.rand(batch, *shape[1:], generator=gen) * (hi - lo)}

    hyperparameters = {**common.hyper(cnn), "blocks": cnn.n_blocks(), "augment": options.augment}
    release = FitRelease(
        config=model_config,
        export=ExportSpec(
            module=Probabilities(model),
            make_inputs=random_pixels,
            output_names=["probabilities"],
            dynamic_axes={"pixels": {0: "batch"}},
            metadata={"model": options.name, "labels": labels, "hyperparameters": hyperparameters},
        ),
        fit=result,
        fit_config=config,
        hyperparameters=hyperparameters,
        card=CardText(
            data=(
                f"{images.layout} at `{options.data}`: {len(x)} images decoded, {len(images.skipped)} "
                f"unreadable skipped, classes {', '.join(labels)}. Each image as the server prepares an "
                f"upload: {settings.height}x{settings.width}, {settings.channels} channel(s), ink "
                f"`{settings.ink}`, invert `{settings.invert}`, values {lo:g}..{hi:g}. Split: {split.describe()}."
            ),
            architecture=(
                f"Scaled CNN: {cnn.n_blocks()} block(s) of two conv3x3-BN-ReLU and a 2x2 max pool "
                f"(width {cnn.width}, doubling per block, capped at {4 * cnn.width}); dropout, linear "
                f"{cnn.hidden}, ReLU, dropout, linear; softmax in the graph. Input {lo:g}..{hi:g} pixels, "
                "scaled to 0..1 and normalised with the training split's per-channel mean/std inside the graph."
            ),
            evaluation=(
                f"The held-out test split ({len(split.test)} images): accuracy and macro F1. `baseline.*`: "
                f"{BASELINE} (scaled to 0..1) fit on the same training split."
            ),
            craft=[
                "loss: cross-entropy",
                JITTER.describe() if augment else "augmentation: none (--augment none)",
                f"dropout {cnn.dropout}, batch norm after every conv",
            ],
        ),
        evaluate=lambda version_dir: evaluate(loaded, options, version_dir),
        baseline=pixel_baseline(x, y, split, options.split_seed, settings.value_range),
        data=common.data_summary(
            split,
            images.layout,
            images=len(x),
            skipped_unreadable=len(images.skipped),
            classes=labels,
            skipped_examples=images.skipped[:5],
        ),
    )
    return publish_fit(release, options, started)
