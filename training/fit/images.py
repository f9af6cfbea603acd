"""Image data sources: a folder of class folders, a flat folder, or a CSV of `path,label`; decoded once.

Every picture goes through the server's own preprocessing (`service.tasks.image.preprocess_image`:
EXIF rotation, transparency, grey/RGB, ink polarity, letterbox, area resize), so a training image is
exactly what `:predict` will feed the model for the same file. Decoded pixels are kept as one uint8
array (N, C, H, W), filled in place: 50,000 28x28 grey images take 39 MB, and no epoch decodes again.

Defaults chosen from the data (each overridable):
- size: the median of the images' shorter sides, rounded to a multiple of 4, clamped to 8..64
  (square; the server letterboxes other aspect ratios);
- channels: 1 when every image is stored grey (modes 1, L, LA, I, I;16, F), else 3;
- ink (grey only): the polarity of most images' background (the median of their border), and uploads
  of the other polarity are inverted (`invert: auto`); colour images are never inverted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from service.errors import InvalidInput, PayloadTooLarge
from service.schema.config import ImagePreprocessing
from service.tasks.image import border_level, preprocess_image  # the server's own polarity rule
from training.fit.errors import DataError, first_few
from training.fit.options import FitOptions
from training.fit.tables import TABLE_SUFFIXES, is_missing, read_table

GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
MIN_SIZE, MAX_SIZE = 8, 64
INK_SAMPLE = 256
"""Images whose border is measured to choose the ink polarity."""
VALUE_RANGE = (0.0, 255.0)
"""Served values stay 0..255; the exported graph scales and normalises them (no server-side drift)."""


def image_suffixes() -> frozenset[str]:
    return frozenset(ext.lower() for ext in Image.registered_extensions())


@dataclass(frozen=True)
class ImageSource:
    files: list[Path]
    labels: list[str] | None
    """Label per file (class folder or CSV column); None for a flat folder of unlabelled images."""
    where: list[str]
    """Per file: how an error names it (the path, or the CSV line)."""
    layout: str
    split_values: list[str | None] | None = None
    """Per file, the `--split-column` value (CSV sources only)."""


def _is_image(path: Path, suffixes: frozenset[str]) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in suffixes


def _from_csv(path: Path, options: FitOptions) -> ImageSource:
    table = read_table(path)
    paths = table.column(options.path_column, "image path")
    labels = table.column(options.label_column or "label", "label")
    files, names, where = [], [], []
    for i, (p, label) in enumerate(zip(paths, labels, strict=True)):
        if is_missing(p) or is_missing(label):
            raise DataError(f"{table.where(i)}: empty {options.path_column!r} or label value")
        files.append((path.parent / str(p).strip()).resolve())
        names.append(str(label).strip())
        where.append(f"{table.where(i)} ({p})")
    split = table.column(options.split_column, "split") if options.split_column else None
    return ImageSource(files, names, where, f"CSV of image paths and labels ({path.name})", split)


def list_images(path: Path, options: FitOptions) -> ImageSource:
    """The image files of a data source, with labels when the layout has them; DataError when empty."""
    if path.is_file() and path.suffix.lower() in TABLE_SUFFIXES:
        return _from_csv(path, options)
    if options.split_column:
        raise DataError(f"{path}: --split-column needs a CSV of path,label,split; a folder has no columns")
    if not path.is_dir():
        raise DataError(f"{path}: expected a folder of images or class folders, or a CSV of path,label")
    suffixes = image_suffixes()
    classes = sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    files: list[Path] = []
    labels: list[str] = []
    for folder in classes:
        found = sorted(p for p in folder.rglob("*") if _is_image(p, suffixes))
        files += found
        labels += [folder.name] * len(found)
    if files:
        return ImageSource(files, labels, [str(f) for f in files], "folder of class folders")
    flat = sorted(p for p in path.iterdir() if _is_image(p, suffixes))
    if not flat:
        raise DataError(
            f"{path}: no images found (looked for class folders PATH/<label>/<file> and image files in "
            "PATH itself, with an extension Pillow reads such as .png, .jpg)"
        )
    return ImageSource(flat, None, [str(f) for f in flat], "flat folder of images")


@dataclass(frozen=True)
class Header:
    size: tuple[int, int] | None
    grey: bool
    problem: str | None


def _header(path: Path) -> Header:
    try:
        with Image.open(path) as image:
            return Header(image.size, image.mode in GREY_MODES, None)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return Header(None, True, f"{type(exc).__name__}: {exc}")


def choose_settings(source: ImageSource, options: FitOptions, headers: list[Header]) -> ImagePreprocessing:
    """Size, channels and ink from the data (rules in the module docstring), unless given."""
    readable = [h for h in headers if h.size is not None]
    if not readable:
        raise DataError(f"none of the {len(headers)} image files can be read: {first_few(_problems(source, headers))}")
    if options.image_size is not None:
        size = options.image_size
        if size < MIN_SIZE or size % 4:
            raise DataError(f"--image-size must be a multiple of 4 and at least {MIN_SIZE}, got {size}")
    else:
        median = float(np.median([min(h.size) for h in readable if h.size is not None]))
        size = int(min(MAX_SIZE, max(MIN_SIZE, 4 * round(median / 4))))
    channels = options.channels or (1 if all(h.grey for h in readable) else 3)
    if channels not in (1, 3):
        raise DataError(f"--channels must be 1 or 3, got {channels}")
    if channels == 3:
        return ImagePreprocessing(height=size, width=size, channels=3, invert="never", value_range=VALUE_RANGE)
    positions = [i for i, h in enumerate(headers) if h.size is not None]
    step = max(1, len(positions) // INK_SAMPLE)
    bright = 0
    measured = 0
    for i in positions[::step][:INK_SAMPLE]:
        try:
            with Image.open(source.files[i]) as image:
                level = border_level(np.asarray(image.convert("L")))
        except (OSError, SyntaxError, ValueError):
            continue
        measured += 1
        bright += level > 127.5
    ink = "dark" if bright * 2 > measured else "bright"
    return ImagePreprocessing(height=size, width=size, channels=1, ink=ink, invert="auto", value_range=VALUE_RANGE)


def _problems(source: ImageSource, headers: list[Header]) -> list[str]:
    return [f"{w}: {h.problem}" for w, h in zip(source.where, headers, strict=True) if h.problem]


@dataclass(frozen=True)
class DecodedImages:
    pixels: np.ndarray
    """(N, C, H, W) uint8, exactly the server's preprocessing of each kept file."""
    labels: list[str] | None
    files: list[Path]
    skipped: list[str]
    """One `file: reason` per unreadable image left out."""
    settings: ImagePreprocessing
    layout: str
    split_values: list[str | None] | None


def decode_images(source: ImageSource, options: FitOptions) -> DecodedImages:
    """Check headers, choose settings, decode once; corrupt files skipped up to the limit."""
    headers = [_header(f) for f in source.files]
    settings = choose_settings(source, options, headers)
    skipped = _problems(source, headers)
    limit = math.floor(options.max_corrupt_fraction * len(source.files))
    shape = (len(source.files), settings.channels, settings.height, settings.width)
    pixels = np.empty(shape, dtype=np.uint8)
    kept: list[int] = []
    for i, (file, header) in enumerate(zip(source.files, headers, strict=True)):
        if header.problem is not None:
            continue
        if len(skipped) > limit:
            break
        try:
            values = preprocess_image(file.read_bytes(), settings, source.where[i])
        except (InvalidInput, PayloadTooLarge, OSError) as exc:
            skipped.append(f"{source.where[i]}: {exc}")
            continue
        pixels[len(kept)] = np.rint(values).clip(0, 255).astype(np.uint8)
        kept.append(i)
    if len(skipped) > limit:
        raise DataError(
            f"{len(skipped)}+ of {len(source.files)} images are unreadable, more than --max-corrupt-fraction "
            f"{options.max_corrupt_fraction} ({limit} allowed): {first_few(skipped)}"
        )
    labels = [source.labels[i] for i in kept] if source.labels is not None else None
    return DecodedImages(
        pixels=pixels[: len(kept)],
        labels=labels,
        files=[source.files[i] for i in kept],
        skipped=skipped,
        settings=settings,
        layout=source.layout,
        split_values=[source.split_values[i] for i in kept] if source.split_values is not None else None,
    )
