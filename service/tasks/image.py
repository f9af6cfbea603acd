"""Pictures -> model input, driven only by the config's `image` section (preprocessing travels with it).

Steps, in order: size guard (from the header, before decoding pixels; per picture and, through a
`RequestBudget`, per request), EXIF rotation, conversion of any mode (16-bit, float, CMYK, CIELAB) to
8-bit grayscale or RGB, transparency
flattened onto a background, grayscale or RGB, ink polarity (invert when the border says the picture's
background is the opposite of the training data's), letterbox to the model's aspect ratio with the
background colour, area (BOX) downscale, intensity 0..255 mapped onto `value_range`, optional mean/std.
A digit drawn at any size, bright-on-dark or dark-on-bright, thus arrives like the training data.

Decoding and conversion happen in one function, `decode_picture`: Pillow's decoders raise a zoo of
exception types on bad files (OSError, ValueError, RuntimeError from AVIF, NotImplementedError from
DDS, struct errors...), and every one of them means the client's picture cannot be used: a 400 naming
the instance, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import io
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from service.batching.errors import DeadlineExceededError
from service.errors import InvalidInput, PayloadTooLarge, ServiceError
from service.schema.config import ImagePreprocessing

BORDER_FRACTION = 0.04
"""Share of the shorter side treated as border when judging the background's polarity."""


class PicturesPastDeadline(DeadlineExceededError):
    """The request's deadline passed while its pictures were being decoded: 504, the model never ran."""

    def __init__(self, where: str, elapsed_s: float) -> None:
        super().__init__(elapsed_s)
        self.args = (f"deadline exceeded {elapsed_s * 1000:.1f} ms after arrival, before decoding {where}; "
                     "the model never ran",)


class DecodingAbandoned(Exception):
    """The client went away: the rest of its pictures are not decoded (nobody reads this error)."""


class RequestBudget:
    """What one request's pictures may cost, checked between pictures by the thread decoding them.

    `max_pixels` bounds the pixels of all the request's pictures together, read from their headers
    before any is decoded (a limit per picture alone lets 1,024 of the largest through); `deadline`
    (time.monotonic()) and `cancel()` (called from the event loop when the client goes away) stop the
    work before the next picture instead of after the last one.
    """

    def __init__(self, max_pixels: int | None, deadline: float | None = None, *, setting: str = "max_request_pixels"):
        self.max_pixels = max_pixels
        self.deadline = deadline
        self.setting = setting
        self.pixels = 0
        self.started = time.monotonic()
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def before(self, where: str) -> None:
        """Raise if the request was cancelled or its deadline passed: called before each picture."""
        if self.cancelled:
            raise DecodingAbandoned(where)
        now = time.monotonic()
        if self.deadline is not None and now >= self.deadline:
            raise PicturesPastDeadline(where, now - self.started)

    def charge(self, pictures: list[tuple[str, bytes]]) -> None:
        """Add up the pictures' pixels from their headers, before any is decoded; 413 naming the setting
        at the first picture that takes the total over."""
        for where, raw in pictures:
            self.pixels += header_pixels(raw)
            if self.max_pixels is not None and self.pixels > self.max_pixels:
                raise PayloadTooLarge(
                    f"{where}: the request's pictures up to this one hold {self.pixels} pixels, more than "
                    f"{self.setting} ({self.max_pixels}) for one request"
                )


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
    width, height = image.size
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"{where}: image is {width}x{height} = {width * height} pixels, more than {limit_name} ({max_pixels})"
        )
    image.load()
    return ImageOps.exif_transpose(image)


def header_pixels(raw: bytes) -> int:
    """Width x height from the picture's header alone (microseconds, no pixel decoded); 0 when the header
    cannot be read (decoding it later reports why)."""
    try:
        with Image.open(io.BytesIO(raw)) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        return 0  # refused when decoded, naming the per-picture limit
    except Exception:  # unreadable: the decode step names the instance and the cause
        return 0
    return int(width) * int(height)


def decode_picture(
    raw: bytes,
    max_pixels: int,
    where: str,
    *,
    channels: int,
    limit_name: str = "image.max_pixels",
) -> Image.Image:
    """An encoded picture -> an 8-bit grayscale (`channels` 1) or RGB image, transparency flattened.

    The one place where pictures are decoded and converted: whatever a decoder or a conversion raises
    on a picture that passed the size guards is a 400 naming the instance.
    """
    try:
        image = _flatten_transparency(_to_8bit(open_image(raw, max_pixels, where, limit_name)))
        return _to_mode(image, "L" if channels == 1 else "RGB")
    except (ServiceError, MemoryError):
        raise
    except Exception as exc:  # every decoder failure is the picture's: see the module docstring
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise InvalidInput(f"{where}: cannot decode image ({len(raw)} bytes): {detail}") from None


def _to_mode(image: Image.Image, mode: str) -> Image.Image:
    """Grayscale or RGB from any mode Pillow decodes. CIELAB goes through a colour transform (Pillow has
    no plain conversion from it); grayscale from CIELAB is its lightness channel."""
    if image.mode == mode:
        return image
    if image.mode == "LAB":
        if mode == "L":
            return image.getchannel("L")
        transform = ImageCms.buildTransform(
            ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"
        )
        converted = ImageCms.applyTransform(image, transform)
        assert converted is not None  # not in place
        return converted
    try:
        return image.convert(mode)
    except ValueError:
        return image.convert("RGB").convert(mode)  # e.g. HSV: Pillow converts it to RGB only


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and float pictures scaled (not clipped) to 0..255; NaN counts as 0."""
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
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


def border_level(gray: NDArray[np.uint8]) -> float:
    """Median intensity of the picture's frame: the background, even when a stroke touches the edge.

    Public because `fit` chooses a data set's ink polarity with this same rule (training/fit/images.py)."""
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
        limit, limit_name = max_pixels, "max_image_pixels"
    else:
        limit, limit_name = settings.max_pixels, "image.max_pixels"
    image = decode_picture(raw, limit, where, channels=settings.channels, limit_name=limit_name)
    level = border_level(np.asarray(image.convert("L")))
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
