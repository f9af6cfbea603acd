"""digits-cnn: image classification of scikit-learn's 8x8 handwritten digits."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from service.schema.config import (
    BatchingSettings,
    ClassificationSettings,
    ModelConfig,
    TensorSpec,
)
from training.augment import AffineJitter
from training.card import CardText
from training.data.digits import IMAGE, LABELS, PIXEL_MAX, load_digits_split
from training.data.splits import describe_split
from training.evaluate import classification_metrics, header, open_session, run_in_batches
from training.export import ExportSpec
from training.family import Family, TrainOptions, TrainResult
from training.loop import FitConfig, StepOutput, fit, seed_everything
from training.models.cnn import CNNConfig, DigitsCNN
from training.models.heads import Probabilities
from training.publish import Release, publish
from training.repository import resolve_version

NAME = "digits-cnn"
FIT = FitConfig(epochs=60, batch_size=64, lr=3e-3, weight_decay=5e-4, patience=12)
JITTER = AffineJitter()


def model_config(cnn: CNNConfig) -> ModelConfig:
    return ModelConfig(
        name=NAME,
        task="image-classification",
        description="Handwritten digit classifier (8x8 grey, bright ink on dark), scikit-learn digits.",
        inputs=[TensorSpec(name="pixels", datatype="FP32", shape=[-1, 1, 8, 8])],
        outputs=[TensorSpec(name="probabilities", datatype="FP32", shape=[-1, 10])],
        batching=BatchingSettings(max_batch_size=64, max_queue_delay_ms=0.0),
        image=IMAGE,
        classification=ClassificationSettings(labels=LABELS, probabilities="probabilities"),
        parameters={"hyperparameters": asdict(cnn)},
    )


def random_pixels(batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {"pixels": torch.rand(batch, 1, 8, 8, generator=generator) * PIXEL_MAX}


def train(options: TrainOptions) -> TrainResult:
    started = time.perf_counter()
    generator = seed_everything(options.seed)
    data = load_digits_split()
    cnn = CNNConfig()
    model = DigitsCNN(cnn)
    fit_config = FIT if options.epochs is None else FitConfig(**{**asdict(FIT), "epochs": options.epochs})

    def step(net: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> StepOutput:
        x, y = batch
        if net.training:
            x = JITTER(x, generator)
        logits = net(x)  # (B, 10)
        return StepOutput(F.cross_entropy(logits, y), len(y), float((logits.argmax(1) == y).sum()))

    def loader(images: Any, shuffle: bool) -> DataLoader[tuple[torch.Tensor, ...]]:
        dataset = TensorDataset(torch.from_numpy(images.x), torch.from_numpy(images.y))
        return DataLoader(dataset, batch_size=fit_config.batch_size, shuffle=shuffle, generator=generator)

    result = fit(
        model,
        step,
        loader(data.train, True),
        loader(data.val, False),
        fit_config,
        desc=NAME,
        dry_run=options.dry_run,
        progress=options.progress,
    )
    release = Release(
        config=model_config(cnn),
        export=ExportSpec(
            module=Probabilities(model),
            make_inputs=random_pixels,
            output_names=["probabilities"],
            dynamic_axes={"pixels": {0: "batch"}},
            metadata={"model": NAME, "hyperparameters": asdict(cnn), "labels": LABELS},
        ),
        fit=result,
        fit_config=fit_config,
        hyperparameters=asdict(cnn),
        card=CardText(
            data=(
                "scikit-learn's bundled handwritten digits (`load_digits`, 1,797 8x8 images, pixel values "
                f"0..16, bright ink on dark): {describe_split()}; {len(data.train)} train, {len(data.val)} "
                f"validation, {len(data.test)} test images."
            ),
            architecture=(
                "Input scaled from 0..16 to 0..1 inside the graph; conv3x3-BN-ReLU x2, max pool, "
                "conv3x3-BN-ReLU, max pool; dropout, linear, ReLU, dropout, linear; softmax inside the "
                "exported graph. Output `probabilities` over labels 0..9."
            ),
            evaluation=f"The held-out test split ({len(data.test)} images); accuracy and macro F1.",
            craft=[
                "loss: cross-entropy",
                JITTER.describe(),
                f"dropout {cnn.dropout}, batch norm after every conv",
            ],
        ),
    )
    return publish(release, options, evaluate, started)


def evaluate(repository: Path, version: int | None) -> dict[str, Any]:
    version, version_dir = resolve_version(repository, NAME, version)
    test = load_digits_split().test
    (probabilities,) = run_in_batches(open_session(version_dir), {"pixels": test.x})
    predicted = np.argmax(probabilities, axis=1)
    return {**header(NAME, version, len(test)), **classification_metrics(test.y, predicted)}


FAMILY = Family(
    name=NAME,
    summary="CNN on scikit-learn's 8x8 handwritten digits (image classification)",
    train=train,
    evaluate=evaluate,
)
