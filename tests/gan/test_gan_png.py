"""The hand-written PNG encoder: what Pillow decodes is exactly the scaled, clipped levels."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from service.schema.image_generation import ImageGenerationSettings
from service.tasks.image_generation import encode_png

SETTINGS = ImageGenerationSettings(z_dim=4, label=None, value_range=(0.0, 16.0))


@pytest.mark.parametrize(("channels", "mode"), [(1, "L"), (3, "RGB")])
def test_encode_png_decodes_to_the_scaled_clipped_levels(channels: int, mode: str) -> None:
    pixels = np.random.default_rng(channels).uniform(-2, 18, (channels, 8, 8)).astype(np.float32)
    raw = encode_png(pixels, SETTINGS, 3)
    picture = Image.open(io.BytesIO(raw))
    assert (picture.mode, picture.size) == (mode, (24, 24))
    levels = np.clip(np.rint(pixels.astype(np.float64) * 255.0 / 16.0), 0, 255).astype(np.uint8)
    decoded = np.asarray(picture).reshape(24, 24, channels).transpose(2, 0, 1)
    np.testing.assert_array_equal(decoded[:, ::3, ::3], levels)
    np.testing.assert_array_equal(decoded[:, 2::3, 2::3], levels)
    assert encode_png(pixels.copy(), SETTINGS, 3) == raw
