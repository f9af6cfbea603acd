"""Task `image-generation`: `{"label": "7", "seed": 3, "count": 4}` instances -> PNG images (and pixels).

Each instance expands into `count` rows of the generator's batch: `z` drawn from `seed` by the recipe in
service/tasks/latents.py (scaled by the request's `temperature`) and the label's index, so the same seed
always gives the same pixels and the same PNG bytes. An instance without a seed gets a fresh random one,
returned in its answer so that the picture can be had again. The rows go through the model's batcher
like any other request; each generated image comes back as a nearest-neighbour enlarged PNG.
"""

from __future__ import annotations

import base64
import copy
import secrets
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.errors import InvalidInput, PayloadTooLarge
from service.runtime.model import ServedModel, Tensors
from service.runtime.session import LoadError
from service.schema.image_generation import ImageGenerationSettings
from service.tasks.image import RequestBudget
from service.tasks.latents import MAX_SEED, draw_latents
from service.tasks.pipelines import Instance, Pipeline

INSTANCE_KEYS = frozenset({"label", "seed", "count"})


@dataclass(frozen=True)
class GenerationOptions:
    """One request's `parameters` for image generation; None = the default (so other tasks can tell
    whether any was given)."""

    raw: bool | None = None
    """Also answer the raw pixel values (model scale, [C][H][W]) of each image."""
    scale: int | None = None
    """PNG enlargement; None = the config's `image_generation.scale`."""
    temperature: float | None = None
    """Multiplies z; None = 1.0 (range in service.tasks.latents.TEMPERATURE_RANGE)."""

    def given(self) -> list[str]:
        return [name for name in ("raw", "scale", "temperature") if getattr(self, name) is not None]


@dataclass(frozen=True)
class _Row:
    """One instance of the request, expanded: which label, which seed, how many images."""

    label: str | None
    seed: int
    count: int


def _integer(value: Any, where: str, low: int, high: int, limit: str = "") -> int:
    """`value` if it is an integer (not a bool) in low..high; `limit` names the setting behind `high`."""
    bound = f"{low}..{high}" + (f" ({limit})" if limit else "")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{where}: expected an integer in {bound}, got {value!r}")
    if not low <= value <= high:
        raise InvalidInput(f"{where}: {value} is outside {bound}")
    return value


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COMPRESSION = 6
"""zlib level of the PNG data; the images are tiny, so the level changes their size by a few bytes."""


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png(pixels: NDArray[Any], settings: ImageGenerationSettings, scale: int) -> bytes:
    """(C, H, W) model values -> PNG bytes: value_range onto 0..255 (rounded, clipped), each pixel
    enlarged to a `scale` x `scale` square. Deterministic: same pixels, same bytes.

    Written directly (8-bit grey or RGB, no filter, one zlib stream) rather than through Pillow: a
    quarter of Pillow's time per image, which is most of the server's own work per generated image."""
    low, high = settings.value_range
    levels = np.clip(np.rint((pixels.astype(np.float64) - low) * (255.0 / (high - low))), 0, 255).astype(np.uint8)
    levels = levels.repeat(scale, axis=1).repeat(scale, axis=2)  # (C, H*scale, W*scale)
    channels, height, width = levels.shape
    rows = np.zeros((height, 1 + width * channels), dtype=np.uint8)  # leading 0 per row: filter "none"
    rows[:, 1:] = levels.transpose(1, 2, 0).reshape(height, width * channels)
    header = struct.pack(">IIBBBBB", width, height, 8, 0 if channels == 1 else 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), PNG_COMPRESSION))
        + _png_chunk(b"IEND", b"")
    )


class ImageGenerator(Pipeline):
    """The image-generation pipeline of one served version.

    The repository keeps one shared instance per version; every request binds its own copy with
    `for_request`, which holds that request's parameters and the rows its instances expand into, the
    state that `postprocess` needs to regroup the generated images per instance.
    """

    def __init__(self, model: ServedModel, settings: ImageGenerationSettings, max_images: int) -> None:
        self.settings = settings
        self.max_images = max_images
        specs = {s.name: s for s in model.inputs}
        wanted = {settings.z} | ({settings.label} if settings.label else set())
        if set(specs) != wanted:
            raise LoadError(f"image_generation: inputs {sorted(wanted)} named; the graph's inputs: {sorted(specs)}")
        z = specs[settings.z]
        if z.datatype != "FP32" or len(z.shape) != 2 or z.shape[1] not in (-1, settings.z_dim):
            raise LoadError(
                f"image_generation.z: input {z.name!r} is {z.datatype} {z.shape}, not FP32 [-1, {settings.z_dim}]"
            )
        if settings.label and (specs[settings.label].datatype != "INT64" or len(specs[settings.label].shape) != 1):
            label = specs[settings.label]
            raise LoadError(
                f"image_generation.label: input {label.name!r} is {label.datatype} {label.shape}, not INT64 [-1]"
            )
        if settings.image not in {s.name for s in model.outputs}:
            raise LoadError(f"image_generation.image: names output {settings.image!r}, not among the graph's outputs")
        self.label_index = {name: i for i, name in enumerate(settings.labels)}
        self.options = GenerationOptions()
        self.rows: list[_Row] = []

    def for_request(self, options: GenerationOptions) -> ImageGenerator:
        bound = copy.copy(self)
        bound.options = options
        bound.rows = []
        return bound

    def preprocess(self, instances: Sequence[Instance], budget: RequestBudget | None = None) -> Tensors:
        temperature = 1.0 if self.options.temperature is None else self.options.temperature
        self.rows = [self._row(instance.value, instance.where) for instance in instances]
        total = sum(row.count for row in self.rows)
        if total > self.max_images:
            raise PayloadTooLarge(
                f"instances: {total} images asked for in all (sum of count), more than max_generated_images "
                f"({self.max_images})"
            )
        z = np.concatenate([draw_latents(r.seed, r.count, self.settings.z_dim, temperature) for r in self.rows])
        tensors: Tensors = {self.settings.z: z}
        if self.settings.label:
            tensors[self.settings.label] = np.concatenate(
                [np.full(r.count, self.label_index[r.label or ""], dtype=np.int64) for r in self.rows]
            )
        return tensors

    def _row(self, value: Any, where: str) -> _Row:
        if not isinstance(value, dict):
            raise InvalidInput(
                f'{where}: expected an object like {{"label": "7", "seed": 3, "count": 1}}, got {type(value).__name__}'
            )
        unknown = sorted(set(value) - INSTANCE_KEYS)
        if unknown:
            raise InvalidInput(f"{where}: unknown key(s) {unknown}; an instance takes {sorted(INSTANCE_KEYS)}")
        label = value.get("label")
        if self.settings.labels:
            if label is None:
                raise InvalidInput(
                    f"{where}.label: required by this class-conditional model; one of {self.settings.labels}"
                )
            if not isinstance(label, str) or label not in self.label_index:
                raise InvalidInput(f"{where}.label: {label!r} is not one of {self.settings.labels}")
        elif label is not None:
            raise InvalidInput(f"{where}.label: this model is unconditional and takes no label, got {label!r}")
        seed = value.get("seed")
        seed = secrets.randbelow(MAX_SEED + 1) if seed is None else _integer(seed, f"{where}.seed", 0, MAX_SEED)
        count = _integer(value.get("count", 1), f"{where}.count", 1, self.max_images, "max_generated_images")
        return _Row(label, seed, count)

    def postprocess(self, outputs: Tensors, k: int) -> list[dict[str, Any]]:
        images = outputs[self.settings.image]
        scale = self.options.scale or self.settings.scale
        answers: list[dict[str, Any]] = []
        start = 0
        for row in self.rows:
            generated = []
            for pixels in images[start : start + row.count]:
                picture: dict[str, Any] = {
                    "b64": base64.b64encode(encode_png(pixels, self.settings, scale)).decode("ascii")
                }
                if self.options.raw:
                    picture["pixels"] = pixels.tolist()
                generated.append(picture)
            start += row.count
            answer: dict[str, Any] = {"seed": row.seed, "count": row.count, "images": generated}
            if row.label is not None:
                answer = {"label": row.label, **answer}
            answers.append(answer)
        return answers
