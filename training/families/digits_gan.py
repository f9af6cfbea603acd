"""digits-gan: a class-conditional GAN generating scikit-learn's 8x8 digits, judged by digits-cnn."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from service.schema.config import (
    CARD_FILE,
    CURVES_FILE,
    METRICS_FILE,
    MODEL_FILE,
    BatchingSettings,
    ModelConfig,
    TensorSpec,
)
from service.schema.image_generation import ImageGenerationSettings
from service.tasks.latents import draw_latents
from training.adversarial import GANOptions, train_gan
from training.card import CardText
from training.data.digits import LABELS, PIXEL_MAX, load_digits_split
from training.data.splits import describe_split
from training.evaluate import header, open_session, run_in_batches
from training.export import ExportSpec, export_onnx
from training.family import Family, TrainOptions, TrainResult
from training.gan_quality import Judge, Reference, class_mean_baseline
from training.gan_report import plot_gan_curves, render_gan_card, save_grid
from training.models.gan import GANConfig, Generator
from training.publish import retrain_command
from training.repository import commit_version, new_version_number, resolve_version, staging_dir

NAME = "digits-gan"
JUDGE_MODEL = "digits-cnn"
"""The classifier that judges the samples, read from the same repository (trained before this family)."""
OPTIONS = GANOptions(epochs=100, judge_every=5)
PER_CLASS = 100
"""Generated images per class for the test figures: 1,000 in all."""
EVAL_SEED = 2026
"""Seed of the latents behind the test figures (the serving recipe, service.tasks.latents)."""
EPOCH_SEED = 1
"""Seed of the fixed latents judged after every epoch (against the validation split)."""
SCALE = 8
"""Default PNG enlargement when served: 8x8 digits as 64x64 pictures."""


def model_config(gan: GANConfig) -> ModelConfig:
    return ModelConfig(
        name=NAME,
        task="image-generation",
        description="Class-conditional GAN generator of 8x8 handwritten digits (bright ink on dark), "
        "scikit-learn digits.",
        inputs=[
            TensorSpec(name="z", datatype="FP32", shape=[-1, gan.z_dim]),
            TensorSpec(name="label", datatype="INT64", shape=[-1]),
        ],
        outputs=[TensorSpec(name="image", datatype="FP32", shape=[-1, 1, 8, 8])],
        batching=BatchingSettings(max_batch_size=64, max_queue_delay_ms=0.0),
        image_generation=ImageGenerationSettings(
            z="z",
            label="label",
            image="image",
            z_dim=gan.z_dim,
            labels=LABELS,
            value_range=(0.0, PIXEL_MAX),
            scale=SCALE,
        ),
        parameters={"hyperparameters": asdict(gan)},
    )


def random_latents(batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "z": torch.randn(batch, GANConfig().z_dim, generator=generator) * 2.0,
        "label": torch.randint(0, len(LABELS), (batch,), generator=generator),
    }


def asked_labels(per_class: int) -> np.ndarray:
    return np.repeat(np.arange(len(LABELS), dtype=np.int64), per_class)


def judge_dir(repository: Path) -> Path:
    """The latest digits-cnn in `repository`; a clear error when it has not been trained there."""
    return resolve_version(repository, JUDGE_MODEL, None)[1]


def _epoch_judge(repository: Path) -> Any:
    """Per-epoch quality of the torch EMA generator on fixed latents, against the validation digits."""
    val = load_digits_split().val
    reference = Reference.build(Judge.open(judge_dir(repository)), val.x, val.y, PIXEL_MAX)
    asked = asked_labels(50)
    z = torch.from_numpy(draw_latents(EPOCH_SEED, len(asked), GANConfig().z_dim))
    y = torch.from_numpy(asked)

    def judge(generator: Generator) -> dict[str, float]:
        return reference.score(generator(z, y).numpy(), asked)

    return judge


def train(options: TrainOptions) -> TrainResult:
    started = time.perf_counter()
    data = load_digits_split()
    gan = GANConfig()
    gan_options = GANOptions(
        **{**asdict(OPTIONS), "seed": options.seed, "dry_run": options.dry_run, "progress": options.progress}
    )
    if options.epochs is not None:
        gan_options = GANOptions(**{**asdict(gan_options), "epochs": options.epochs})
    result = train_gan(data.train.x, data.train.y, len(LABELS), gan_options, gan, _epoch_judge(options.repository))
    generator = result.generator.eval()

    version = new_version_number(options.repository, NAME, options.version)
    staged = staging_dir(options.repository, NAME, version)
    hyperparameters = asdict(gan)
    parity = export_onnx(
        ExportSpec(
            module=generator,
            make_inputs=random_latents,
            output_names=["image"],
            dynamic_axes={"z": {0: "batch"}, "label": {0: "batch"}},
            metadata={"model": NAME, "hyperparameters": hyperparameters, "labels": LABELS},
        ),
        staged / MODEL_FILE,
        seed=options.seed,
    )
    config = model_config(gan)
    version_dir = commit_version(options.repository, NAME, version, staged, config)
    test_metrics = evaluate(options.repository, version)
    plot_gan_curves(result, version_dir / CURVES_FILE, f"{NAME} v{version}")
    parameters = sum(p.numel() for p in generator.parameters())
    seconds = time.perf_counter() - started
    metrics = {
        "model": NAME,
        "version": version,
        "dry_run": options.dry_run,
        "seed": options.seed,
        "test": test_metrics,
        "parity_max_abs_diff": {str(b): d for b, d in parity.max_abs_diff.items()},
        "parameters": parameters,
        "hyperparameters": hyperparameters,
        "gan_options": asdict(gan_options),
        "training": result.summary(),
        "seconds_total": round(seconds, 2),
    }
    (version_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    card = render_gan_card(
        config=config,
        version=version,
        text=_card_text(gan, gan_options, len(data.train)),
        hyperparameters=hyperparameters,
        result=result,
        parameters=parameters,
        test_metrics=test_metrics,
        parity=parity.max_abs_diff,
        retrain=retrain_command(NAME, options, version),
        dry_run=options.dry_run,
    )
    (version_dir / CARD_FILE).write_text(card, encoding="utf-8")
    return TrainResult(name=NAME, version=version, version_dir=version_dir, metrics=test_metrics, seconds=seconds)


def _card_text(gan: GANConfig, gan_options: GANOptions, n_train: int) -> CardText:
    return CardText(
        data=(
            "scikit-learn's bundled handwritten digits (`load_digits`, 8x8, values 0..16, bright ink on "
            f"dark), {describe_split()}, the same split as digits-cnn. The GAN trains on the {n_train} "
            "training digits; the validation digits drive the per-epoch quality curve, the test digits "
            "the figures below."
        ),
        architecture=(
            f"Generator (exported): `z` ({gan.z_dim} standard normal values) concatenated with a "
            f"{gan.embed_dim}-dimensional embedding of `label`, linear-BN-ReLU to {gan.g_channels[0]}x2x2, "
            "two blocks of nearest 2x upsampling + conv3x3-BN-ReLU (to 4x4, then 8x8), conv3x3 to one "
            "channel, tanh rescaled to 0..16 inside the graph. Discriminator (training only): "
            f"conv3x3 and two strided conv4x4 ({gan.d_channels[0]} and {gan.d_channels[1]} channels), "
            "LeakyReLU 0.2, global sum pooling, a "
            "linear score plus the projection of a label embedding, every layer spectrally normalised."
        ),
        evaluation=(
            f"{PER_CLASS * len(LABELS):,} generated images, {PER_CLASS} per class, from latents drawn with "
            f"the serving recipe (`service/tasks/latents.py`, seed {EVAL_SEED}, temperature 1). "
            "`conditional_accuracy`: share that the committed digits-cnn classifies as the class asked for "
            "(floor 0.90). `frechet_distance`: Fréchet distance between digits-cnn's penultimate-layer "
            "features (128 values) of those images and of the held-out test digits, beside "
            "`baseline_class_means` (each class's mean training image plus Gaussian noise with that "
            "class's per-pixel spread, 1,000 images) and `baseline_real_train` (1,000 real training "
            "digits: the floor any generator could reach); lower is better. `diversity_ratio`: mean "
            "pairwise pixel distance between generated images of the same class, divided by the same "
            "figure for the test digits (floor 0.5; near 0 means mode collapse)."
        ),
        craft=gan_options.describe(),
    )


def generate(version_dir: Path, seed: int, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """(images, asked labels) from the exported generator, latents by the serving recipe."""
    asked = asked_labels(per_class)
    z = draw_latents(seed, len(asked), GANConfig().z_dim)
    (images,) = run_in_batches(open_session(version_dir), {"z": z, "label": asked})
    return images, asked


def evaluate(repository: Path, version: int | None) -> dict[str, Any]:
    version, version_dir = resolve_version(repository, NAME, version)
    data = load_digits_split()
    reference = Reference.build(Judge.open(judge_dir(repository)), data.test.x, data.test.y, PIXEL_MAX)
    images, asked = generate(version_dir, EVAL_SEED, PER_CLASS)
    figures = reference.score(images, asked)
    rng = np.random.default_rng(EVAL_SEED)
    real_index = rng.choice(len(data.train), size=len(asked), replace=False)
    means = class_mean_baseline(data.train.x, data.train.y, asked, EVAL_SEED, PIXEL_MAX)
    return {
        **header(NAME, version, len(asked)),
        **figures,
        "baseline_class_means": reference.frechet_to(means),
        "baseline_real_train": reference.frechet_to(data.train.x[real_index]),
        "real_diversity": reference.real_diversity,
    }


def write_grid(repository: Path, path: Path, seed: int = 0, per_class: int = 12) -> Path:
    """A PNG grid for the README (docs/img/): row c holds the images that `:predict` serves for
    `{"label": c, "seed": seed, "count": per_class}`, generated by the committed graph."""
    _, version_dir = resolve_version(repository, NAME, None)
    session = open_session(version_dir)
    z = draw_latents(seed, per_class, GANConfig().z_dim)
    rows = [session.run(None, {"z": z, "label": np.full(per_class, c, dtype=np.int64)})[0] for c in range(len(LABELS))]
    return save_grid(np.stack(rows)[:, :, 0], path, PIXEL_MAX)


FAMILY = Family(
    name=NAME,
    summary="class-conditional GAN generating the 8x8 digits (image generation, judged by digits-cnn)",
    train=train,
    evaluate=evaluate,
)
