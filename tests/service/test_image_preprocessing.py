"""Picture preprocessing: polarity, letterbox, transparency, bit depth, and the decompression-bomb guard."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from service.errors import InvalidInput, PayloadTooLarge
from service.schema.config import ImagePreprocessing
from service.tasks.image import decode_b64, preprocess_image

DIGITS = ImagePreprocessing(height=8, width=8, value_range=(0.0, 16.0), ink="bright")


def _encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _bar(size: int = 64, ink: int = 255, background: int = 0) -> np.ndarray:
    """A vertical bar in the middle quarter of columns."""
    pixels = np.full((size, size), background, np.uint8)
    pixels[:, size * 3 // 8 : size * 5 // 8] = ink
    return pixels


@pytest.mark.parametrize(("ink", "background"), [(255, 0), (0, 255)])
def test_polarity_is_normalised_to_the_training_ink(ink: int, background: int) -> None:
    values = preprocess_image(_encode(Image.fromarray(_bar(ink=ink, background=background))), DIGITS, "x")
    assert values.shape == (1, 8, 8) and values.dtype == np.float32
    assert values[0, :, 3:5].min() == pytest.approx(16.0) and values[0, :, :3].max() == pytest.approx(0.0)


def test_invert_never_and_dark_ink_models() -> None:
    white_bar_on_black = _encode(Image.fromarray(_bar()))
    never = preprocess_image(white_bar_on_black, DIGITS.model_copy(update={"invert": "never"}), "x")
    dark_model = preprocess_image(white_bar_on_black, DIGITS.model_copy(update={"ink": "dark"}), "x")
    assert never[0, 0, 4] == pytest.approx(16.0)
    assert dark_model[0, 0, 4] == pytest.approx(0.0) and dark_model[0, 0, 0] == pytest.approx(16.0)


def test_letterbox_keeps_aspect_ratio_with_background() -> None:
    wide = np.zeros((32, 64), np.uint8)
    wide[:, 28:36] = 255  # a centred bar, 1/8 of the width
    values = preprocess_image(_encode(Image.fromarray(wide)), DIGITS, "x")
    assert values[0, 0].max() == 0.0 and values[0, 7].max() == 0.0  # padded rows above and below
    assert values[0, 3:5, 3:5].min() > 0.0


def test_transparent_background_keeps_dark_strokes_visible() -> None:
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[:, 6:10] = (0, 0, 0, 255)  # opaque black strokes on a fully transparent canvas
    values = preprocess_image(_encode(Image.fromarray(rgba, mode="RGBA")), DIGITS, "x")
    assert values[0, :, 3:5].min() == pytest.approx(16.0) and values[0, :, 0].max() == pytest.approx(0.0)


def test_sixteen_bit_pictures_are_scaled_not_clipped() -> None:
    deep = (_bar().astype(np.uint16) * 257).astype(np.uint16)
    values = preprocess_image(_encode(Image.fromarray(deep)), DIGITS, "x")
    assert values[0, :, 3:5].min() == pytest.approx(16.0) and values[0, :, 0].max() == pytest.approx(0.0)


def test_rgb_model_gets_channels_first_and_mean_std() -> None:
    settings = ImagePreprocessing(height=4, width=4, channels=3, mean=[0.5, 0.5, 0.5], std=[0.25, 0.5, 1.0])
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    values = preprocess_image(
        _encode(Image.fromarray(red), "JPEG"), settings.model_copy(update={"invert": "never"}), "x"
    )
    assert values.shape == (3, 4, 4)
    assert values[0].mean() == pytest.approx(2.0, abs=0.05) and values[2].mean() == pytest.approx(
        -0.5, abs=0.05
    )


def test_pixel_guard_refuses_before_decoding() -> None:
    huge = _encode(Image.new("L", (300, 300)))
    with pytest.raises(
        PayloadTooLarge, match=re.escape("300x300 = 90000 pixels, more than image.max_pixels (10000)")
    ):
        preprocess_image(huge, DIGITS.model_copy(update={"max_pixels": 10_000}), "instances[0]")


def test_truncated_and_unknown_pictures_are_invalid_input() -> None:
    png = _encode(Image.fromarray(_bar()))
    with pytest.raises(InvalidInput, match="instances\\[1\\]: cannot decode image"):
        preprocess_image(png[: len(png) // 2], DIGITS, "instances[1]")
    with pytest.raises(InvalidInput, match="unknown format"):
        preprocess_image(b"GIF89a-but-not-really", DIGITS, "instances[1]")


def test_decode_b64_accepts_data_urls_and_names_the_field() -> None:
    assert decode_b64("data:image/png;base64,aGk=", "instances[0]") == b"hi"
    with pytest.raises(InvalidInput, match=re.escape("instances[0].b64: expected a base64 string, got int")):
        decode_b64(5, "instances[0]")
