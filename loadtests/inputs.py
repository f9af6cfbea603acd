"""Realistic request inputs shared by the locust scenarios and the benchmark.

Digits come from scikit-learn's bundled handwritten digits (the last few hundred of the set), rendered
to PNG the way a user would upload them; texts and prompts come from small
files next to this module. Nothing here imports torch, so load generators stay light.
"""

from __future__ import annotations

import base64
import io
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

DATA_DIR = Path(__file__).parent / "data"
DIGIT_MAX = 16.0
"""scikit-learn digits are 8x8 intensities in 0..16."""
DIGIT_COUNT = 360
"""How many digits (the last ones of the set) the load tests cycle through."""


def _lines(name: str) -> list[str]:
    text = (DATA_DIR / name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


@cache
def sms_texts() -> tuple[str, ...]:
    """SMS-like messages, ham and spam, for text classification."""
    return tuple(_lines("sms.txt"))


@cache
def prompts() -> tuple[str, ...]:
    """Shakespeare-like prompts for text generation."""
    return tuple(_lines("prompts.txt"))


@cache
def digit_images() -> np.ndarray:
    """Handwritten digits, shape (n, 8, 8), float32 intensities 0..16."""
    from sklearn.datasets import load_digits  # scikit-learn is slow to import; only pay when used

    images = load_digits().images[-DIGIT_COUNT:]
    return np.ascontiguousarray(images, dtype=np.float32)


def to_png(image: np.ndarray, scale: int = 4) -> bytes:
    """An 8x8 digit (0..16) as a grayscale PNG, upscaled like a real picture of a digit."""
    pixels = np.clip(image / DIGIT_MAX * 255.0, 0, 255).astype(np.uint8)
    picture = Image.fromarray(pixels).resize(
        (pixels.shape[1] * scale, pixels.shape[0] * scale), Image.Resampling.NEAREST
    )
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


@cache
def digit_pngs() -> tuple[bytes, ...]:
    return tuple(to_png(image) for image in digit_images())


@cache
def noise_pngs(count: int = 16, seed: int = 0) -> tuple[bytes, ...]:
    """Random-noise pictures: what an anomaly detector trained on digits should flag."""
    rng = np.random.default_rng(seed)
    return tuple(to_png(rng.uniform(0, DIGIT_MAX, size=(8, 8)).astype(np.float32)) for _ in range(count))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
