"""8x8 digits (0..16 pixel values, as in the digits data set) rendered as real image files, the way a
user would photograph, draw or save one."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

PIXEL_MAX = 16.0


def render_digit(digit: np.ndarray, size: int, fmt: str = "PNG", *, dark_ink: bool = False) -> bytes:
    """An (8, 8) 0..16 digit as a `size` x `size` PNG/JPEG, bright-on-dark or dark-on-bright."""
    gray = np.round(digit.reshape(8, 8) / PIXEL_MAX * 255).astype(np.uint8)
    if dark_ink:
        gray = 255 - gray
    image = Image.fromarray(gray, mode="L").resize((size, size), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()
