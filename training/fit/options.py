"""Every option of `nnserve-train fit`, with its default, in one frozen dataclass the tasks read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DEFAULT_VAL_FRACTION = 0.15
DEFAULT_TEST_FRACTION = 0.15
DEFAULT_SPLIT_SEED = 20240
DEFAULT_MAX_CORRUPT_FRACTION = 0.01
DEFAULT_THRESHOLD_PERCENTILE = 99.0
DEFAULT_DENOISE = 0.0
DEFAULT_MAX_CATEGORIES = 64
DEFAULT_MAX_LENGTH = 128
DEFAULT_VOCAB_SIZE_TEXT = 4000
DEFAULT_VOCAB_SIZE_GPT = 2048
DEFAULT_CONTEXT = 128
DEFAULT_GPT_LAYERS = 2
DEFAULT_GPT_WIDTH = 128
DEFAULT_GPT_DROPOUT = 0.1

Device = Literal["auto", "cpu", "cuda"]
Augment = Literal["none", "affine"]
DEFAULT_AUGMENT: Augment = "affine"
"""image-classification: see docs/training.md (measured on the digits fixture, with and without)."""


@dataclass(frozen=True)
class FitOptions:
    name: str
    task: str
    data: Path
    repository: Path = Path("models")
    version: int | None = None
    seed: int = 0
    split_seed: int = DEFAULT_SPLIT_SEED
    val_fraction: float = DEFAULT_VAL_FRACTION
    test_fraction: float = DEFAULT_TEST_FRACTION
    split_column: str | None = None
    epochs: int | None = None
    """None = the task's default upper bound (early stopping usually ends sooner)."""
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    patience: int | None = None
    device: Device = "auto"
    dry_run: bool = False
    progress: bool = True
    # images
    image_size: int | None = None
    channels: int | None = None
    max_corrupt_fraction: float = DEFAULT_MAX_CORRUPT_FRACTION
    path_column: str = "path"
    augment: Augment = DEFAULT_AUGMENT
    """image-classification: `affine` = random shifts, rotations and scalings of each training batch."""
    # tables and text
    text_column: str = "text"
    label_column: str | None = None
    """None = `label` where a label is required; anomaly detection trains unlabelled without it."""
    max_categories: int = DEFAULT_MAX_CATEGORIES
    arch: str | None = None
    """text-classification: lstm | transformer (default transformer)."""
    max_length: int = DEFAULT_MAX_LENGTH
    vocab_size: int | None = None
    positive_label: str | None = None
    """text-classification with two classes: the class whose precision, recall and F1 are reported."""
    # architecture sizes (None = the task's rule)
    width: int | None = None
    layers: int | None = None
    context: int = DEFAULT_CONTEXT
    heads: int | None = None
    """text-generation: attention heads (None = 4 when the width allows, else 1)."""
    dropout: float | None = None
    """text-generation: dropout in the decoder (None = DEFAULT_GPT_DROPOUT)."""
    steps_per_epoch: int | None = None
    """text-generation: batches of random windows per epoch (None = about one pass, 10..50)."""
    max_tokens_limit: int | None = None
    """text-generation: the most new tokens a request may ask for (None = min(256, context))."""
    # anomaly detection
    normal_label: str | None = None
    threshold_percentile: float = DEFAULT_THRESHOLD_PERCENTILE
    denoise: float = DEFAULT_DENOISE
    """Images: each training image loses a random 0..denoise share of its pixels to background (0 = off)."""
    # image generation
    judge: str | None = None
    """An image classifier already in the repository that judges the generator (None = `fit` trains one)."""
    output_max: float | None = None
    """The generated images' values span 0..output_max (None = 1)."""
    png_scale: int | None = None
    """Default enlargement of the served PNGs (None = 128 // image size)."""
    # after publishing
    reload_url: str | None = None
    api_key: str | None = None
    command: str = ""
    """The command line that produced this run, for the card's "how to retrain"."""
