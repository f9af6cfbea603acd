"""The `fit` subcommand's arguments and its run: parse, train the task, publish, optionally reload.

Kept apart from `training.cli` so the bundled families' CLI stays as it was; only the standard library
is imported until a task actually runs.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from training.fit import options as defaults
from training.fit.options import FitOptions
from training.fit.tasks import task_names


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of at least 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text}")
    return value


class _DefaultsFormatter(argparse.HelpFormatter):
    """Appends `(default: X)` to options whose help does not already explain their default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.required or any(action.default is v for v in (None, False, argparse.SUPPRESS)):
            return text
        return f"{text} (default: %(default)s)"


def add_fit_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    fit = sub.add_parser(
        "fit",
        parents=[common],
        help="train a model on your own data (images, text, tables, anomalies, a corpus)",
        formatter_class=_DefaultsFormatter,
        description="Train NAME on your data for TASK: validate and split the data (bad data is refused "
        "before training, naming the file, line or column), fit the task's preprocessing on the training "
        "split, train with early stopping, export to ONNX with a parity check at batch 1/7/64, compare "
        "with a classical baseline on the same split, and publish <repository>/NAME/<version>/ atomically "
        "with card.md, metrics.json, curves.png and a config.yaml that makes :predict work as is. "
        "See docs/training.md, 'Your own data'.",
        epilog="Data layouts. image-classification: PATH/<label>/<image> folders, or a CSV with path,label "
        "columns (paths relative to the CSV). text-classification: a .csv, .tsv or .jsonl file. "
        "tabular-classification: a .csv/.tsv/.jsonl of feature columns plus the label column. "
        "anomaly-detection: a folder of normal images, class folders with --normal-label, or a table "
        "(optionally with --label-column and --normal-label). text-generation: a .txt/.md file or a folder "
        "of them. image-generation: PATH/<label>/<image> folders (conditional) or PATH/<image> (unconditional).",
    )
    fit.add_argument("name", metavar="NAME", help="model name in the repository (letters, digits, _ . -)")
    fit.add_argument("--task", required=True, choices=task_names(), help="what the model does")
    fit.add_argument("--data", required=True, type=Path, help="the data: a folder, a table, or a text corpus")
    fit.add_argument(
        "--version",
        type=_positive_int,
        default=None,
        help="version to write; an existing one is replaced (default: highest present + 1)",
    )
    split = fit.add_argument_group("split")
    split.add_argument(
        "--val-fraction",
        type=_fraction,
        default=defaults.DEFAULT_VAL_FRACTION,
        help="share held out for early stopping, checkpoint choice and threshold calibration",
    )
    split.add_argument(
        "--test-fraction",
        type=_fraction,
        default=defaults.DEFAULT_TEST_FRACTION,
        help="share held out for the test figures only",
    )
    split.add_argument(
        "--split-seed",
        type=int,
        default=defaults.DEFAULT_SPLIT_SEED,
        help="seed of the stratified split (independent of --seed)",
    )
    split.add_argument(
        "--split-column",
        default=None,
        help="table column holding train/val/test per row (default: none, a stratified random split)",
    )
    train = fit.add_argument_group("training")
    train.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help="maximum epochs (default: the task's own; early stopping usually ends sooner)",
    )
    train.add_argument("--batch-size", type=_positive_int, default=None, help="default: the task's own")
    train.add_argument("--lr", type=_positive_float, default=None, help="peak learning rate (default: the task's own)")
    train.add_argument(
        "--weight-decay",
        type=_non_negative_float,
        default=None,
        help="L2 penalty, AdamW's decoupled form (default: the task's own)",
    )
    train.add_argument(
        "--patience",
        type=_positive_int,
        default=None,
        help="early stopping: epochs without a better validation loss before stopping (default: the task's own)",
    )
    train.add_argument("--seed", type=int, default=0, help="weights, shuffling and dropout")
    train.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto = CUDA when torch sees one, else CPU"
    )
    train.add_argument(
        "--dry-run",
        action="store_true",
        help="one training batch, then the full export/parity/publish path (default: off)",
    )
    train.add_argument("--no-progress", action="store_true", help="hide progress bars (default: shown)")
    arch = fit.add_argument_group("architecture (default: chosen from the data, see docs)")
    arch.add_argument(
        "--arch",
        choices=("lstm", "transformer"),
        default=None,
        help="text-classification network (default: transformer)",
    )
    arch.add_argument(
        "--width",
        type=_positive_int,
        default=None,
        help="base width (default: CNN channels 32, MLP units 128, autoencoder channels 16 / units 64, "
        f"GPT model width {defaults.DEFAULT_GPT_WIDTH})",
    )
    arch.add_argument(
        "--layers",
        type=_positive_int,
        default=None,
        help="CNN blocks (default: the size rule), MLP layers (2), transformer/GPT layers "
        f"(2 / {defaults.DEFAULT_GPT_LAYERS})",
    )
    arch.add_argument(
        "--context", type=_positive_int, default=defaults.DEFAULT_CONTEXT, help="text-generation: tokens of context"
    )
    arch.add_argument(
        "--heads",
        type=_positive_int,
        default=None,
        help="text-generation: attention heads, a divisor of --width (default: 4 when it divides the width, else 1)",
    )
    arch.add_argument(
        "--dropout",
        type=_probability,
        default=None,
        help=f"text-generation: dropout in the decoder (default: {defaults.DEFAULT_GPT_DROPOUT}; 0 for runs of "
        "about one pass over a large corpus, far from overfitting)",
    )
    arch.add_argument(
        "--steps-per-epoch",
        type=_positive_int,
        default=None,
        help="text-generation: batches of random windows per epoch, i.e. how often validation and early "
        "stopping look (default: about one pass over the training tokens, 10..50)",
    )
    arch.add_argument(
        "--max-tokens-limit",
        type=_positive_int,
        default=None,
        help="text-generation: the most new tokens one request may ask the server for (default: min(256, --context))",
    )
    images = fit.add_argument_group("images")
    images.add_argument(
        "--image-size",
        type=_positive_int,
        default=None,
        help="square side in pixels, a multiple of 4 (default: median shorter side, rounded "
        "to a multiple of 4, clamped to 8..64)",
    )
    images.add_argument(
        "--channels", type=int, choices=(1, 3), default=None, help="default: 1 when every image is stored grey, else 3"
    )
    images.add_argument(
        "--max-corrupt-fraction",
        type=float,
        default=defaults.DEFAULT_MAX_CORRUPT_FRACTION,
        help="unreadable images are skipped and counted up to this share, else an error",
    )
    images.add_argument("--path-column", default="path", help="image CSV: column of image paths")
    images.add_argument(
        "--augment",
        choices=("none", "affine"),
        default=defaults.DEFAULT_AUGMENT,
        help="image-classification: affine = every training batch randomly shifted (up to 12.5%% of the side), "
        "rotated (up to 12 degrees) and scaled (up to 10%%); none = the images as they are",
    )
    tables = fit.add_argument_group("text and tables")
    tables.add_argument("--text-column", default="text", help="text-classification: column of texts")
    tables.add_argument(
        "--label-column",
        default=None,
        help="column of labels (default: `label`; anomaly-detection: none, all rows normal)",
    )
    tables.add_argument(
        "--max-categories",
        type=_positive_int,
        default=defaults.DEFAULT_MAX_CATEGORIES,
        help="tabular: most frequent training values kept per string column; others share the unknown slot",
    )
    tables.add_argument(
        "--max-length",
        type=_positive_int,
        default=defaults.DEFAULT_MAX_LENGTH,
        help="text-classification: tokens kept per text",
    )
    tables.add_argument(
        "--vocab-size",
        type=_positive_int,
        default=None,
        help=f"tokenizer vocabulary (default: {defaults.DEFAULT_VOCAB_SIZE_TEXT} for "
        f"classification, {defaults.DEFAULT_VOCAB_SIZE_GPT} for generation)",
    )
    tables.add_argument(
        "--positive-label",
        default=None,
        metavar="LABEL",
        help="text-classification with two classes: report precision, recall and F1 of this class "
        "(default: none, macro F1)",
    )
    anomaly = fit.add_argument_group("anomaly detection")
    anomaly.add_argument(
        "--normal-label",
        default=None,
        help="the label (class folder or column value) of normal data; others are held-out anomalies "
        "for AUROC (default: none, every item normal)",
    )
    anomaly.add_argument(
        "--threshold-percentile",
        type=float,
        default=defaults.DEFAULT_THRESHOLD_PERCENTILE,
        help="threshold = this percentile of validation normal scores",
    )
    anomaly.add_argument(
        "--denoise",
        type=_rate,
        default=defaults.DEFAULT_DENOISE,
        metavar="RATE",
        help="images: train as a denoising autoencoder, each training image losing a random 0..RATE share of "
        "its pixels to background, the target the clean image; 0 turns it off",
    )
    generation = fit.add_argument_group("image generation")
    generation.add_argument(
        "--judge",
        default=None,
        metavar="MODEL",
        help="an image classifier in the repository, with the data's classes and image settings, that judges "
        "the generator (default: fit trains one on the same data and split, never published)",
    )
    generation.add_argument(
        "--output-max",
        type=_positive_float,
        default=None,
        metavar="MAX",
        help="the generated images' values span 0..MAX, served as PNG levels 0..255 (default: 1; above ~16 "
        "float32 rounding can break the 1e-4 export parity limit)",
    )
    generation.add_argument(
        "--png-scale",
        type=_positive_int,
        default=None,
        metavar="N",
        help="default enlargement of the served PNGs, 1..32 (default: 128 // image size)",
    )
    serve = fit.add_argument_group("after publishing")
    serve.add_argument(
        "--reload",
        dest="reload_url",
        default=None,
        metavar="URL",
        help="POST URL/v2/repository/models/NAME/load on a running server (default: no reload)",
    )
    serve.add_argument(
        "--api-key", default=None, help="API key for --reload, sent as Authorization: Bearer (default: none)"
    )


def options_from(args: argparse.Namespace, argv: list[str]) -> FitOptions:
    return FitOptions(
        name=args.name,
        task=args.task,
        data=args.data,
        repository=args.repository,
        version=args.version,
        seed=args.seed,
        split_seed=args.split_seed,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        split_column=args.split_column,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        patience=args.patience,
        device=args.device,
        dry_run=args.dry_run,
        progress=not args.no_progress,
        image_size=args.image_size,
        channels=args.channels,
        max_corrupt_fraction=args.max_corrupt_fraction,
        path_column=args.path_column,
        augment=args.augment,
        text_column=args.text_column,
        label_column=args.label_column,
        max_categories=args.max_categories,
        arch=args.arch,
        max_length=args.max_length,
        vocab_size=args.vocab_size,
        positive_label=args.positive_label,
        width=args.width,
        layers=args.layers,
        context=args.context,
        heads=args.heads,
        dropout=args.dropout,
        steps_per_epoch=args.steps_per_epoch,
        max_tokens_limit=args.max_tokens_limit,
        normal_label=args.normal_label,
        threshold_percentile=args.threshold_percentile,
        denoise=args.denoise,
        judge=args.judge,
        output_max=args.output_max,
        png_scale=args.png_scale,
        reload_url=args.reload_url,
        api_key=args.api_key,
        command=" ".join(["nnserve-train", *map(shlex.quote, argv)]),
    )


def run_fit(options: FitOptions) -> int:
    """Train and publish; a DataError or a failed reload is one clear line on stderr and exit code 2."""
    from service.schema.config import MODEL_NAME_PATTERN, is_valid_model_name
    from training.fit.errors import DataError
    from training.fit.release import ReloadError, request_reload
    from training.fit.tasks import run

    if not is_valid_model_name(options.name):
        print(
            f"nnserve-train fit: error: model name {options.name!r} does not match {MODEL_NAME_PATTERN}",
            file=sys.stderr,
        )
        return 2
    try:
        result = run(options)
    except DataError as exc:
        print(f"nnserve-train fit: error: {exc}", file=sys.stderr)
        return 2
    print(f"{result.name} v{result.version} -> {result.version_dir} ({result.seconds:.1f} s)", file=sys.stderr)
    for key, value in result.metrics.items():
        shown = f"{value:.4f}" if isinstance(value, float) else value
        print(f"{key:>22}  {shown}")
    if options.reload_url:
        try:
            status = request_reload(options.reload_url, options.name, options.api_key)
        except ReloadError as exc:
            print(f"nnserve-train fit: error: published, but the reload failed: {exc}", file=sys.stderr)
            return 2
        print(f"nnserve-train fit: {options.reload_url} loaded {options.name} (HTTP {status})", file=sys.stderr)
    return 0
