"""Pictures -> model input, driven only by the config's `image` section (preprocessing travels with it).

Steps, in order: size guard (from the header, before decoding pixels), EXIF rotation, transparency
flattened onto a background, grayscale or RGB, ink polarity (invert when the border says the picture's
background is the opposite of the training data's), letterbox to the model's aspect ratio with the
background colour, area (BOX) downscale, intensity 0..255 mapped onto `value_range`, optional mean/std.
A digit drawn at any size, bright-on-dark or dark-on-bright, thus arrives like the training data.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from service.errors import InvalidInput, PayloadTooLarge
from service.schema.config import ImagePreprocessing

BORDER_FRACTION = 0.04
"""Share of the shorter side treated as border when judging the background's polarity."""


def decode_b64(text: Any, where: str) -> bytes:
    """Bytes of a base64 string; a `data:image/...;base64,` prefix is allowed."""
    if not isinstance(text, str):
        raise InvalidInput(f"{where}.b64: expected a base64 string, got {type(text).__name__}")
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{where}.b64: not valid base64 ({exc})") from None


def open_image(raw: bytes, max_pixels: int, where: str, limit_name: str = "image.max_pixels") -> Image.Image:
    """Decode after checking the pixel count from the header alone (decompression-bomb guard)."""
    try:
        image = Image.open(io.BytesIO(raw))
    except Image.DecompressionBombError:
        raise PayloadTooLarge(
            f"{where}: the image header declares far more pixels than {limit_name} ({max_pixels})"
        ) from None
    except UnidentifiedImageError:
        raise InvalidInput(f"{where}: cannot decode image ({len(raw)} bytes): unknown format") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(f"{where}: cannot decode image ({len(raw)} bytes): {exc}") from None
    width, height = image.size
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"{where}: image is {width}x{height} = {width * height} pixels, more than {limit_name} ({max_pixels})"
        )
    try:
        image.load()
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidInput(f"{where}: cannot decode image ({width}x{height} {image.format}): {exc}") from None


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and float pictures scaled (not clipped) to 0..255."""
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        return Image.fromarray(np.clip(values * (255.0 / top), 0, 255).astype(np.uint8))
    return image


def _flatten_transparency(image: Image.Image) -> Image.Image:
    """Put transparent areas on the colour opposite to the opaque strokes, so the strokes stay visible."""
    if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
        return image
    rgba = image.convert("RGBA")
    pixels = np.asarray(rgba)
    alpha = pixels[..., 3]
    if alpha.min() == 255:
        return rgba.convert("RGB")
    opaque = pixels[..., :3][alpha > 127]
    dark_strokes = opaque.size == 0 or float(opaque.mean()) < 128
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255) if dark_strokes else (0, 0, 0, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _border_level(gray: NDArray[np.uint8]) -> float:
    """Median intensity of the picture's frame: the background, even when a stroke touches the edge."""
    width = max(1, round(BORDER_FRACTION * min(gray.shape)))
    frame = np.concatenate(
        [gray[:width].ravel(), gray[-width:].ravel(), gray[:, :width].ravel(), gray[:, -width:].ravel()]
    )
    return float(np.median(frame))


def _letterbox(image: Image.Image, width: int, height: int, fill: int) -> Image.Image:
    """Pad (never crop or stretch) to the target aspect ratio, keeping the content centred."""
    w, h = image.size
    if w * height == h * width:
        return image
    new_w, new_h = max(w, round(h * width / height)), max(h, round(w * height / width))
    canvas = Image.new(image.mode, (new_w, new_h), fill if image.mode == "L" else (fill, fill, fill))
    canvas.paste(image, ((new_w - w) // 2, (new_h - h) // 2))
    return canvas


def preprocess_image(
    raw: bytes, settings: ImagePreprocessing, where: str, max_pixels: int | None = None
) -> NDArray[np.float32]:
    """An encoded picture -> (channels, height, width) float32 model values; `max_pixels` (the server's
    limit) applies when it is lower than the config's `image.max_pixels`."""
    if max_pixels is not None and max_pixels < settings.max_pixels:
        image = open_image(raw, max_pixels, where, "max_image_pixels")
    else:
        image = open_image(raw, settings.max_pixels, where)
    image = _flatten_transparency(_to_8bit(image))
    image = image.convert("L" if settings.channels == 1 else "RGB")
    level = _border_level(np.asarray(image.convert("L")))
    bright_background = level > 127.5
    wants_bright_background = settings.ink == "dark"
    invert = settings.invert == "always" or (
        settings.invert == "auto" and bright_background != wants_bright_background
    )
    if invert:
        image = ImageOps.invert(image)
        level = 255.0 - level
    image = _letterbox(image, settings.width, settings.height, round(level))
    image = image.resize((settings.width, settings.height), Image.Resampling.BOX)
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)  # (C, H, W)
    low, high = settings.value_range
    values = low + (high - low) * pixels / 255.0
    if settings.mean is not None and settings.std is not None:
        mean = np.asarray(settings.mean, dtype=np.float32).reshape(-1, 1, 1)
        std = np.asarray(settings.std, dtype=np.float32).reshape(-1, 1, 1)
        values = (values - mean) / std
    return values.astype(np.float32)
