"""image-generation: class folders -> a class-conditional GAN generator; a flat folder -> an unconditional one.

The images are loaded, checked, split and preprocessed exactly as for image-classification (the server's
own preprocessing, so grey images share one ink polarity), and the GAN trains on the training split
through `training.adversarial.train_gan`. Only the generator is exported. Quality is judged like
digits-gan's: with classes, by an image classifier that `fit` trains on the same folder and split (in a
temporary repository, never published): conditional accuracy, Fréchet distance on its penultimate
features beside two baselines, and diversity against the real images; without classes, the Fréchet
distance is taken in pixel space and there is no conditional accuracy.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, replace
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
from service.schema.image_generation import MAX_SCALE, ImageGenerationSettings
from service.tasks.latents import draw_latents
from training.adversarial import GANOptions, GANResult, train_gan
from training.card import CardText
from training.evaluate import open_session, run_in_batches
from training.export import ExportSpec, export_onnx
from training.family import TrainResult
from training.fit import common
from training.fit.errors import DataError
from training.fit.images import DecodedImages, decode_images, list_images
from training.fit.options import FitOptions
from training.fit.release import publish_atomically, retrain_line
from training.fit.split import Split, split_rows
from training.fit.tasks import image_classification
from training.fit.tasks.image_classification import content_keys
from training.gan_quality import Judge, PixelJudge, Reference, class_mean_baseline
from training.gan_report import plot_gan_curves, render_gan_card
from training.models.gan import GANConfig, Generator

SUMMARY = "images in class folders (conditional) or a flat folder (unconditional) -> GAN generator"
DEFAULTS = GANOptions(epochs=100, batch_size=64, judge_every=5)
PIXEL_MAX = 255.0
"""Decoded and judged pixels span 0..255, the server's preprocessing range (what the judge classifier takes)."""
GAN_PIXEL_MAX = 1.0
"""The generator works and is served in 0..1: at 0..255 float32 rounding alone breaks the 1e-4 parity limit."""
JUDGE_EPOCHS = 10
"""The judging classifier trains for at most this many epochs (early stopping), fewer with a smaller --epochs."""
PER_CLASS = 100
"""Generated images per class for the test figures (UNCONDITIONAL_COUNT without classes)."""
UNCONDITIONAL_COUNT = 500
EVAL_SEED = 2026
EPOCH_SEED = 1
EPOCH_PER_CLASS = 50
PNG_SIDE = 128
"""Default served PNG side: the scale is PNG_SIDE // image size (at least 1)."""


def load(options: FitOptions) -> tuple[DecodedImages, list[str], np.ndarray, Split]:
    """Images, class names ([] for a flat folder), label indices (zeros when unconditional), the split."""
    source = list_images(options.data, options)
    labels: list[str] = []
    if source.labels is not None:
        distinct = sorted(set(source.labels))
        if len(distinct) < 2:
            raise DataError(
                f"{options.data}: only the class folder {distinct[0]!r}; put the images in the folder itself "
                "for an unconditional model, or add a second class folder"
            )
        labels = distinct
    images = decode_images(source, options)
    y = (
        np.asarray([labels.index(label) for label in images.labels], dtype=np.int64)
        if images.labels is not None
        else np.zeros(len(images.pixels), dtype=np.int64)
    )
    split = split_rows(
        len(y),
        options,
        labels=images.labels,
        keys=content_keys(images.pixels),
        split_values=images.split_values,
        where=lambda i: str(images.files[i]),
    )
    return images, labels, y, split


def gan_options(options: FitOptions) -> GANOptions:
    changes: dict[str, Any] = {"seed": options.seed, "dry_run": options.dry_run, "progress": options.progress}
    if options.epochs is not None:
        changes["epochs"] = options.epochs
    if options.batch_size is not None:
        changes["batch_size"] = options.batch_size
    if options.lr is not None:
        changes["lr_g"] = changes["lr_d"] = options.lr
    return replace(DEFAULTS, **changes)


def train_judge(options: FitOptions) -> tuple[Judge, dict[str, Any]]:
    """An image classifier trained by `fit` on the same folder and split, in a temporary repository."""
    epochs = min(JUDGE_EPOCHS, options.epochs or JUDGE_EPOCHS)
    with tempfile.TemporaryDirectory(prefix="nnserve-judge-") as repository:
        judge_options = replace(
            options,
            name=f"{options.name}-judge",
            task="image-classification",
            repository=Path(repository),
            version=None,
            epochs=epochs,
            batch_size=None,
            lr=None,
            width=None,
            layers=None,
            reload_url=None,
            command="",
        )
        result = image_classification.run(judge_options)
        return Judge.open(result.version_dir), dict(result.metrics)


def asked_labels(n_classes: int, per_class: int) -> np.ndarray:
    return np.repeat(np.arange(max(1, n_classes), dtype=np.int64), per_class)


def model_config(options: FitOptions, gan: GANConfig, labels: list[str], images: DecodedImages) -> ModelConfig:
    conditional = bool(labels)
    inputs = [TensorSpec(name="z", datatype="FP32", shape=[-1, gan.z_dim])]
    if conditional:
        inputs.append(TensorSpec(name="label", datatype="INT64", shape=[-1]))
    kind = f"class-conditional ({len(labels)} classes)" if conditional else "unconditional"
    return ModelConfig(
        name=options.name,
        task="image-generation",
        description=f"{kind.capitalize()} GAN generator of {gan.image_size}x{gan.image_size} images, trained "
        f"with `nnserve-train fit` on {options.data.name}.",
        inputs=inputs,
        outputs=[TensorSpec(name="image", datatype="FP32", shape=[-1, gan.channels, gan.image_size, gan.image_size])],
        batching=BatchingSettings(max_batch_size=64, max_queue_delay_ms=0.0),
        image_generation=ImageGenerationSettings(
            z="z",
            label="label" if conditional else None,
            image="image",
            z_dim=gan.z_dim,
            labels=labels,
            value_range=(0.0, GAN_PIXEL_MAX),
            scale=max(1, min(MAX_SCALE, PNG_SIDE // gan.image_size)),
        ),
        parameters={"hyperparameters": asdict(gan), "ink": images.settings.ink},
    )


def generate(version_dir: Path, asked: np.ndarray, conditional: bool, z_dim: int) -> np.ndarray:
    """Images from the exported graph in 0..255, latents by the serving recipe (service/tasks/latents.py)."""
    feeds: dict[str, np.ndarray] = {"z": draw_latents(EVAL_SEED, len(asked), z_dim)}
    if conditional:
        feeds["label"] = asked
    (images,) = run_in_batches(open_session(version_dir), feeds)
    return np.asarray(images) * (PIXEL_MAX / GAN_PIXEL_MAX)


def quality_figures(
    version_dir: Path, reference: Reference, x: np.ndarray, y: np.ndarray, split: Split, n_classes: int, z_dim: int
) -> dict[str, Any]:
    conditional = n_classes > 0
    asked = asked_labels(n_classes, PER_CLASS if conditional else UNCONDITIONAL_COUNT)
    images = generate(version_dir, asked, conditional, z_dim)
    figures: dict[str, Any] = dict(reference.score(images, asked))
    if not conditional:
        del figures["conditional_accuracy"]  # one "class": always 1, meaningless
    train_x, train_y = x[split.train], y[split.train]
    rng = np.random.default_rng(EVAL_SEED)
    real = rng.choice(len(train_x), size=min(len(asked), len(train_x)), replace=False)
    means = class_mean_baseline(train_x, train_y, asked, EVAL_SEED, PIXEL_MAX)
    return {
        "split": "test",
        "n": len(asked),
        "n_real": len(split.test),
        **figures,
        "baseline_class_means": reference.frechet_to(means),
        "baseline_real_train": reference.frechet_to(train_x[real]),
        "real_diversity": reference.real_diversity,
    }


def run(options: FitOptions) -> TrainResult:
    started = time.perf_counter()
    images, labels, y, split = load(options)
    settings = images.settings
    gan_opts = gan_options(options)
    if len(split.train) < gan_opts.batch_size and not options.dry_run:
        raise DataError(
            f"{options.data}: {len(split.train)} training images, fewer than one batch of {gan_opts.batch_size}; "
            "add images or lower --batch-size"
        )
    common.device(options)  # --device cuda without CUDA is refused before anything trains (the GAN runs on CPU)
    x = images.pixels.astype(np.float32)
    n_classes = len(labels)
    judge_metrics: dict[str, Any] = {}
    judge: Judge | PixelJudge = PixelJudge(PIXEL_MAX)
    if n_classes:
        judge, judge_metrics = train_judge(options)
    gan = GANConfig(
        n_classes=n_classes, image_size=settings.height, channels=settings.channels, pixel_max=GAN_PIXEL_MAX
    )
    val_reference = Reference.build(judge, x[split.val], y[split.val], PIXEL_MAX)
    asked = asked_labels(n_classes, EPOCH_PER_CLASS)
    z = torch.from_numpy(draw_latents(EPOCH_SEED, len(asked), gan.z_dim))
    asked_t = torch.from_numpy(asked)

    def epoch_judge(generator: Generator) -> dict[str, float]:
        figures = val_reference.score(generator(z, asked_t).numpy() * (PIXEL_MAX / GAN_PIXEL_MAX), asked)
        return figures if n_classes else {k: v for k, v in figures.items() if k != "conditional_accuracy"}

    train_y = y[split.train] if n_classes else None
    train_x = x[split.train] * (GAN_PIXEL_MAX / PIXEL_MAX)
    result = train_gan(train_x, train_y, n_classes, gan_opts, gan, epoch_judge)
    generator = result.generator.eval()
    config = model_config(options, gan, labels, images)
    test_reference = Reference.build(judge, x[split.test], y[split.test], PIXEL_MAX)

    def random_latents(batch: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        feeds = {"z": torch.randn(batch, gan.z_dim, generator=gen) * 2.0}
        if n_classes:
            feeds["label"] = torch.randint(0, n_classes, (batch,), generator=gen)
        return feeds

    def write(staged: Path, version: int) -> dict[str, Any]:
        hyperparameters = asdict(gan)
        parity = export_onnx(
            ExportSpec(
                module=generator,
                make_inputs=random_latents,
                output_names=["image"],
                dynamic_axes={name: {0: "batch"} for name in (["z", "label"] if n_classes else ["z"])},
                metadata={"model": options.name, "hyperparameters": hyperparameters, "labels": labels},
            ),
            staged / MODEL_FILE,
            seed=options.seed,
        )
        test_metrics = quality_figures(staged, test_reference, x, y, split, n_classes, gan.z_dim)
        if judge_metrics:
            test_metrics["judge"] = {k: judge_metrics[k] for k in ("accuracy", "macro_f1") if k in judge_metrics}
        plot_gan_curves(result, staged / CURVES_FILE, f"{options.name} v{version}")
        parameters = sum(p.numel() for p in generator.parameters())
        metrics = {
            "model": options.name,
            "version": version,
            "task": options.task,
            "dry_run": options.dry_run,
            "seed": options.seed,
            "data": common.data_summary(
                split,
                images.layout,
                images=len(x),
                skipped_unreadable=len(images.skipped),
                classes=labels,
                skipped_examples=images.skipped[:5],
            ),
            "test": test_metrics,
            "parity_max_abs_diff": {str(b): d for b, d in parity.max_abs_diff.items()},
            "parameters": parameters,
            "hyperparameters": hyperparameters,
            "gan_options": asdict(gan_opts),
            "training": result.summary(),
            "seconds_total": round(time.perf_counter() - started, 2),
        }
        (staged / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        card = render_gan_card(
            config=config,
            version=version,
            text=card_text(options, gan, gan_opts, images, labels, split, result),
            hyperparameters=hyperparameters,
            result=result,
            parameters=parameters,
            test_metrics=test_metrics,
            parity=parity.max_abs_diff,
            retrain=retrain_line(options),
            dry_run=options.dry_run,
        )
        (staged / CARD_FILE).write_text(card, encoding="utf-8")
        return test_metrics

    return publish_atomically(options, config, write, started)


def card_text(
    options: FitOptions,
    gan: GANConfig,
    gan_opts: GANOptions,
    images: DecodedImages,
    labels: list[str],
    split: Split,
    result: GANResult,
) -> CardText:
    settings = images.settings
    side = gan.image_size // 4
    conditioning = (
        f"concatenated with a {gan.embed_dim}-dimensional embedding of `label` ({len(labels)} classes)"
        if labels
        else "alone (unconditional: no label input)"
    )
    if labels:
        evaluation = (
            f"{PER_CLASS} generated images per class from latents drawn with the serving recipe "
            f"(`service/tasks/latents.py`, seed {EVAL_SEED}). The judge is an image classifier trained by "
            f"`fit` on the same folder and split (at most {JUDGE_EPOCHS} epochs; its own test accuracy is "
            "`judge.accuracy`). `conditional_accuracy`: share the judge classifies as the class asked for. "
            "`frechet_distance`: Fréchet distance between the judge's penultimate-layer features of the "
            "generated images and of the test images, beside `baseline_class_means` (each class's mean "
            "training image plus per-pixel Gaussian noise) and `baseline_real_train` (real training images: "
            "the floor any generator could reach); lower is better. `diversity_ratio`: mean pairwise pixel "
            "distance between generated images of one class over the same figure for the test images "
            "(near 0 = mode collapse)."
        )
    else:
        evaluation = (
            f"{UNCONDITIONAL_COUNT} generated images from latents drawn with the serving recipe (seed "
            f"{EVAL_SEED}). With no classes there is no classifier to judge them: `frechet_distance` is "
            "measured on the pixels (scaled to 0..1) against the test images, beside `baseline_class_means` "
            "(the mean training image plus per-pixel noise) and `baseline_real_train` (real training images); "
            "`diversity_ratio`: mean pairwise pixel distance of generated images over that of the test images."
        )
    return CardText(
        data=(
            f"{images.layout} at `{options.data}`: {len(images.pixels)} images decoded, {len(images.skipped)} "
            f"unreadable skipped{', classes ' + ', '.join(labels) if labels else ''}. Each image preprocessed "
            f"as the server does: {settings.height}x{settings.width}, {settings.channels} channel(s)"
            + (f", ink `{settings.ink}` (generated images have that polarity)" if settings.channels == 1 else "")
            + f". Split: {split.describe()}; the GAN trains on the {len(split.train)} training images, the "
            "validation images drive the per-epoch quality curve, the test images the figures below."
        ),
        architecture=(
            f"Generator (exported): `z` ({gan.z_dim} standard normal values) {conditioning}, linear-BN-ReLU "
            f"to {gan.g_channels[0]}x{side}x{side}, two blocks of nearest 2x upsampling + conv3x3-BN-ReLU, "
            f"conv3x3 to {gan.channels} channel(s), tanh rescaled to 0..{GAN_PIXEL_MAX:g} inside the graph (the "
            "server maps 0..1 to PNG levels 0..255). "
            f"Discriminator (training only): conv3x3 and two strided conv4x4 ({gan.d_channels[0]} and "
            f"{gan.d_channels[1]} channels), LeakyReLU 0.2, global sum pooling, a linear score"
            + (" plus the projection of a label embedding" if labels else "")
            + ", every layer spectrally normalised."
        ),
        evaluation=evaluation,
        craft=[*gan_opts.describe(), f"{len(result.history)} epochs run"],
    )
