"""image-generation: class folders -> a class-conditional GAN generator; a flat folder -> an unconditional one.

The images are loaded, checked, split and preprocessed exactly as for image-classification (the server's
own preprocessing, so grey images share one ink polarity), and the GAN trains on the training split
through `training.adversarial.train_gan`. Only the generator is exported. With classes, quality is judged
by an image classifier: `--judge MODEL` (one already in the repository, e.g. digits-cnn for the bundled
digits-gan, training/presets/digits_gan.py) or, by default, one that `fit` trains on the same folder and
split (in a temporary repository, never published): conditional accuracy, Fréchet distance on its
penultimate features beside two baselines, and diversity against the real images. Without classes the
Fréchet distance is taken in pixel space and there is no conditional accuracy.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
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
    load_config,
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
from training.fit.tasks import run
from training.fit.tasks.image_classification import content_keys
from training.gan_quality import Judge, PixelJudge, Reference, class_mean_baseline
from training.gan_report import plot_gan_curves, render_gan_card
from training.models.gan import GANConfig, Generator
from training.repository import model_dir, resolve_version

SUMMARY = "images in class folders (conditional) or a flat folder (unconditional) -> GAN generator"
DEFAULTS = GANOptions(epochs=100, batch_size=64, judge_every=5)
OUTPUT_MAX = 1.0
"""Default top of the generated values (`--output-max`): at 0..255 float32 rounding alone breaks the 1e-4
parity limit, so the generator works and is served in 0..1 unless told otherwise."""
JUDGE_EPOCHS = 10
"""The judging classifier trains for at most this many epochs (early stopping), fewer with a smaller --epochs."""
PER_CLASS = 100
"""Generated images per class for the test figures (UNCONDITIONAL_COUNT without classes)."""
UNCONDITIONAL_COUNT = 500
EVAL_SEED = 2026
EPOCH_SEED = 1
EPOCH_PER_CLASS = 50
PNG_SIDE = 128
"""Default served PNG side: the scale is PNG_SIDE // image size (at least 1), unless --png-scale."""
BASELINE = "class-mean images plus noise; real training images"


@dataclass(frozen=True)
class GenerationData:
    """What `load` checked and prepared: decoded images, class names ([] = unconditional), label indices
    (zeros when unconditional) and the split."""

    images: DecodedImages
    labels: list[str]
    y: np.ndarray
    split: Split

    @property
    def span(self) -> tuple[float, float]:
        """The decoded pixels' value range (the served preprocessing's), which a judge classifier takes."""
        return self.images.settings.value_range


def class_names(labels: Sequence[str] | None, options: FitOptions) -> list[str]:
    """Sorted class names; [] for unlabelled images; one class alone is refused (say what to do)."""
    if labels is None:
        return []
    distinct = sorted(set(labels))
    if len(distinct) < 2:
        raise DataError(
            f"{options.data}: only the class folder {distinct[0]!r}; put the images in the folder itself "
            "for an unconditional model, or add a second class folder"
        )
    return distinct


def prepared(images: DecodedImages, options: FitOptions) -> GenerationData:
    """Label indices and the split (stratified, or the images' split values) of decoded images."""
    labels = class_names(images.labels, options)
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
    return GenerationData(images, labels, y, split)


def load(options: FitOptions) -> GenerationData:
    source = list_images(options.data, options)
    class_names(source.labels, options)  # a single class is refused before anything is decoded
    return prepared(decode_images(source, options), options)


def gan_options(options: FitOptions) -> GANOptions:
    changes: dict[str, Any] = {"seed": options.seed, "dry_run": options.dry_run, "progress": options.progress}
    if options.epochs is not None:
        changes["epochs"] = options.epochs
    if options.batch_size is not None:
        changes["batch_size"] = options.batch_size
    if options.lr is not None:
        changes["lr_g"] = changes["lr_d"] = options.lr
    return replace(DEFAULTS, **changes)


def output_max(options: FitOptions) -> float:
    return OUTPUT_MAX if options.output_max is None else options.output_max


def to_pixels(generated: np.ndarray, data: GenerationData, options: FitOptions) -> np.ndarray:
    """Generated values 0..output_max -> the decoded pixels' range, where judge and references live."""
    lo, hi = data.span
    return lo + generated * ((hi - lo) / output_max(options))


def repository_judge(data: GenerationData, options: FitOptions) -> tuple[Judge, str]:
    """`--judge MODEL`: its latest version, refused unless it classifies these classes from these pixels."""
    name = str(options.judge)
    try:
        number, version_dir = resolve_version(options.repository, name, None)
        config = load_config(model_dir(options.repository, name))
    except (FileNotFoundError, ValueError) as exc:
        raise DataError(f"--judge {name}: {exc}") from None
    if config.task != "image-classification" or config.classification is None or config.image is None:
        raise DataError(f"--judge {name}: task {config.task!r}, not an image classifier")
    if config.classification.labels != data.labels:
        raise DataError(f"--judge {name}: its classes {config.classification.labels} are not the data's {data.labels}")
    mine, theirs = data.images.settings, config.image
    wanted = (mine.height, mine.width, mine.channels, mine.ink, tuple(mine.value_range))
    found = (theirs.height, theirs.width, theirs.channels, theirs.ink, tuple(theirs.value_range))
    if wanted != found:
        raise DataError(
            f"--judge {name}: it takes (height, width, channels, ink, value range) {found}, the data is {wanted}"
        )
    return Judge.open(version_dir), f"{name} v{number}"


def trained_judge(options: FitOptions) -> Judge:
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
            weight_decay=None,
            patience=None,
            width=None,
            layers=None,
            judge=None,
            output_max=None,
            png_scale=None,
            reload_url=None,
            command="",
        )
        return Judge.open(run(judge_options).version_dir)  # held in memory: the folder may go


def open_judge(data: GenerationData, options: FitOptions) -> tuple[Judge | PixelJudge, dict[str, Any]]:
    """The judge and what the figures should say of it (its accuracy on the test split); none without classes."""
    lo, hi = data.span
    if not data.labels:
        return PixelJudge(hi - lo), {}
    if options.judge is not None:
        judge, described = repository_judge(data, options)
    else:
        judge, described = trained_judge(options), "trained by fit on the same data and split (not published)"
    test = data.split.test
    predicted, _ = judge.run(data.images.pixels[test].astype(np.float32))
    return judge, {"model": described, "accuracy": float((predicted == data.y[test]).mean())}


def asked_labels(n_classes: int, per_class: int) -> np.ndarray:
    return np.repeat(np.arange(max(1, n_classes), dtype=np.int64), per_class)


def png_scale(options: FitOptions, image_size: int) -> int:
    if options.png_scale is None:
        return max(1, min(MAX_SCALE, PNG_SIDE // image_size))
    if options.png_scale > MAX_SCALE:
        raise DataError(f"--png-scale must be 1..{MAX_SCALE}, got {options.png_scale}")
    return options.png_scale


def model_config(options: FitOptions, gan: GANConfig, data: GenerationData) -> ModelConfig:
    labels = data.labels
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
            value_range=(0.0, gan.pixel_max),
            scale=png_scale(options, gan.image_size),
        ),
        parameters={"hyperparameters": asdict(gan), "ink": data.images.settings.ink},
    )


def generate(version_dir: Path, asked: np.ndarray, conditional: bool) -> np.ndarray:
    """Generated values from the exported graph, latents by the serving recipe (service/tasks/latents.py)."""
    session = open_session(version_dir)
    z_dim = int(session.get_inputs()[0].shape[1])
    feeds: dict[str, np.ndarray] = {"z": draw_latents(EVAL_SEED, len(asked), z_dim)}
    if conditional:
        feeds["label"] = asked
    (images,) = run_in_batches(session, feeds)
    return np.asarray(images)


def quality_figures(
    version_dir: Path, data: GenerationData, options: FitOptions, judge: Judge | PixelJudge, about: dict[str, Any]
) -> dict[str, Any]:
    """The test figures of an exported generator, judged by `judge` against the test split."""
    conditional = bool(data.labels)
    x, y, split = data.images.pixels.astype(np.float32), data.y, data.split
    lo, hi = data.span
    reference = Reference.build(judge, x[split.test], y[split.test], hi - lo)
    asked = asked_labels(len(data.labels), PER_CLASS if conditional else UNCONDITIONAL_COUNT)
    images = to_pixels(generate(version_dir, asked, conditional), data, options)
    figures: dict[str, Any] = dict(reference.score(images, asked))
    if not conditional:
        del figures["conditional_accuracy"]  # one "class": always 1, meaningless
    train_x, train_y = x[split.train], y[split.train]
    rng = np.random.default_rng(EVAL_SEED)
    real = rng.choice(len(train_x), size=min(len(asked), len(train_x)), replace=False)
    means = class_mean_baseline(train_x, train_y, asked, EVAL_SEED, hi)
    return {
        "split": "test",
        "n": len(asked),
        "n_real": len(split.test),
        **figures,
        "real_diversity": reference.real_diversity,
        "baseline": {
            "name": BASELINE,
            "class_means": {"frechet_distance": reference.frechet_to(means)},
            "real_train": {"frechet_distance": reference.frechet_to(train_x[real])},
        },
        **({"judge": about} if about else {}),
    }


def evaluate(data: GenerationData, options: FitOptions, version_dir: Path) -> dict[str, Any]:
    """Test figures of an exported version. Without --judge the judge is trained again as `publish` did
    (same data, split and seed)."""
    judge, about = open_judge(data, options)
    return quality_figures(version_dir, data, options, judge, about)


def publish(data: GenerationData, options: FitOptions, started: float) -> TrainResult:
    images, labels, y, split = data.images, data.labels, data.y, data.split
    settings = images.settings
    gan_opts = gan_options(options)
    if len(split.train) < gan_opts.batch_size and not options.dry_run:
        raise DataError(
            f"{options.data}: {len(split.train)} training images, fewer than one batch of {gan_opts.batch_size}; "
            "add images or lower --batch-size"
        )
    common.device(options)  # --device cuda without CUDA is refused before anything trains (the GAN runs on CPU)
    n_classes = len(labels)
    gan = GANConfig(
        n_classes=n_classes, image_size=settings.height, channels=settings.channels, pixel_max=output_max(options)
    )
    config = model_config(options, gan, data)  # refuses a bad --png-scale before training
    judge, about = open_judge(data, options)
    x = images.pixels.astype(np.float32)
    lo, hi = data.span
    val_reference = Reference.build(judge, x[split.val], y[split.val], hi - lo)
    asked = asked_labels(n_classes, EPOCH_PER_CLASS)
    z = torch.from_numpy(draw_latents(EPOCH_SEED, len(asked), gan.z_dim))
    asked_t = torch.from_numpy(asked)

    def epoch_judge(generator: Generator) -> dict[str, float]:
        figures = val_reference.score(to_pixels(generator(z, asked_t).numpy(), data, options), asked)
        return figures if n_classes else {k: v for k, v in figures.items() if k != "conditional_accuracy"}

    train_y = y[split.train] if n_classes else None
    train_x = (x[split.train] - lo) * (gan.pixel_max / (hi - lo))
    result = train_gan(train_x, train_y, n_classes, gan_opts, gan, epoch_judge)
    generator = result.generator.eval()

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
        test_metrics = quality_figures(staged, data, options, judge, about)
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
            text=card_text(options, gan, gan_opts, data, result),
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


def judge_text(options: FitOptions) -> str:
    if options.judge is not None:
        return (
            f"The judge is the image classifier `{options.judge}` of the repository (its latest version, named "
            "with its accuracy on this test split in `judge`)."
        )
    return (
        f"The judge is an image classifier trained by `fit` on the same folder and split (at most {JUDGE_EPOCHS} "
        "epochs, never published; its test accuracy is `judge.accuracy`)."
    )


def card_text(
    options: FitOptions, gan: GANConfig, gan_opts: GANOptions, data: GenerationData, result: GANResult
) -> CardText:
    images, labels, split = data.images, data.labels, data.split
    settings = images.settings
    lo, hi = data.span
    side = gan.image_size // 4
    conditioning = (
        f"concatenated with a {gan.embed_dim}-dimensional embedding of `label` ({len(labels)} classes)"
        if labels
        else "alone (unconditional: no label input)"
    )
    if labels:
        evaluation = (
            f"{PER_CLASS} generated images per class from latents drawn with the serving recipe "
            f"(`service/tasks/latents.py`, seed {EVAL_SEED}). {judge_text(options)} `conditional_accuracy`: "
            "share the judge classifies as the class asked for. `frechet_distance`: Fréchet distance between "
            "the judge's penultimate-layer features of the generated images and of the test images, beside "
            "`baseline.class_means` (each class's mean training image plus per-pixel Gaussian noise) and "
            "`baseline.real_train` (real training images: the floor any generator could reach); lower is "
            "better. `diversity_ratio`: mean pairwise pixel distance between generated images of one class "
            "over the same figure for the test images (`real_diversity`; near 0 = mode collapse)."
        )
    else:
        evaluation = (
            f"{UNCONDITIONAL_COUNT} generated images from latents drawn with the serving recipe (seed "
            f"{EVAL_SEED}). With no classes there is no classifier to judge them: `frechet_distance` is "
            "measured on the pixels (scaled to 0..1) against the test images, beside `baseline.class_means` "
            "(the mean training image plus per-pixel noise) and `baseline.real_train` (real training images); "
            "`diversity_ratio`: mean pairwise pixel distance of generated images over that of the test images."
        )
    return CardText(
        data=(
            f"{images.layout} at `{options.data}`: {len(images.pixels)} images decoded, {len(images.skipped)} "
            f"unreadable skipped{', classes ' + ', '.join(labels) if labels else ''}. Each image as the server "
            f"prepares an upload: {settings.height}x{settings.width}, {settings.channels} channel(s)"
            + (f", ink `{settings.ink}` (generated images have that polarity)" if settings.channels == 1 else "")
            + f", values {lo:g}..{hi:g}. Split: {split.describe()}; the GAN trains on the {len(split.train)} "
            "training images, the validation images drive the per-epoch quality curve, the test images the "
            "figures below."
        ),
        architecture=(
            f"Generator (exported): `z` ({gan.z_dim} standard normal values) {conditioning}, linear-BN-ReLU "
            f"to {gan.g_channels[0]}x{side}x{side}, two blocks of nearest 2x upsampling + conv3x3-BN-ReLU, "
            f"conv3x3 to {gan.channels} channel(s), tanh rescaled to 0..{gan.pixel_max:g} inside the graph (the "
            f"server maps 0..{gan.pixel_max:g} to PNG levels 0..255). "
            f"Discriminator (training only): conv3x3 and two strided conv4x4 ({gan.d_channels[0]} and "
            f"{gan.d_channels[1]} channels), LeakyReLU 0.2, global sum pooling, a linear score"
            + (" plus the projection of a label embedding" if labels else "")
            + ", every layer spectrally normalised."
        ),
        evaluation=evaluation,
        craft=[*gan_opts.describe(), f"{len(result.history)} epochs run"],
    )
