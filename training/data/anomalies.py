"""Synthetic anomalies for the digits autoencoder's test set, generated with numpy from a fixed seed.

Five kinds, in equal numbers, all in the digits' own 0..16 scale:
- noise: every pixel uniform in 0..16;
- blank: an empty (dark) image with faint sensor noise (0..2);
- strokes: 1-3 random straight strokes that form no digit;
- shapes: a filled or outlined rectangle or ellipse;
- corrupted: a held-out test digit with a 4x4 block of noise, inverted, or overlaid on a second digit.
Corrupted digits reuse test digits only, so nothing from training or validation leaks in.
"""

from __future__ import annotations

import numpy as np

ANOMALY_KINDS = ("noise", "blank", "strokes", "shapes", "corrupted")
ANOMALY_SEED = 4242
SIZE = 8
PIXEL_MAX = 16.0


def _noise(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, PIXEL_MAX, (SIZE, SIZE))


def _blank(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 2, (SIZE, SIZE))


def _line(image: np.ndarray, rng: np.random.Generator) -> None:
    (r0, c0), (r1, c1) = rng.uniform(0, SIZE - 1, (2, 2))
    for t in np.linspace(0.0, 1.0, 4 * SIZE):
        r, c = round(r0 + t * (r1 - r0)), round(c0 + t * (c1 - c0))
        image[r, c] = max(image[r, c], rng.uniform(10, PIXEL_MAX))


def _strokes(rng: np.random.Generator) -> np.ndarray:
    image = np.zeros((SIZE, SIZE))
    for _ in range(rng.integers(1, 4)):
        _line(image, rng)
    return image


def _shapes(rng: np.random.Generator) -> np.ndarray:
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    r0, c0 = rng.integers(0, 4, 2)
    r1, c1 = r0 + rng.integers(3, SIZE - r0 + 1), c0 + rng.integers(3, SIZE - c0 + 1)
    if rng.random() < 0.5:
        inside = (rows >= r0) & (rows < r1) & (cols >= c0) & (cols < c1)
        edge = inside & ((rows == r0) | (rows == r1 - 1) | (cols == c0) | (cols == c1 - 1))
    else:
        cr, cc, hr, hc = (r0 + r1 - 1) / 2, (c0 + c1 - 1) / 2, (r1 - r0) / 2, (c1 - c0) / 2
        d = ((rows - cr) / hr) ** 2 + ((cols - cc) / hc) ** 2
        inside, edge = d <= 1.0, (d <= 1.0) & (d >= 0.4)
    mask = inside if rng.random() < 0.5 else edge
    return np.where(mask, rng.uniform(10, PIXEL_MAX), 0.0)


def _corrupted(rng: np.random.Generator, digits: np.ndarray, i: int) -> np.ndarray:
    image = digits[rng.integers(len(digits))].copy()
    match i % 3:
        case 0:
            r, c = rng.integers(0, SIZE - 3, 2)
            image[r : r + 4, c : c + 4] = rng.uniform(0, PIXEL_MAX, (4, 4))
        case 1:
            image = PIXEL_MAX - image
        case _:
            image = np.maximum(image, digits[rng.integers(len(digits))])
    return image


def make_anomalies(digits: np.ndarray, per_kind: int) -> tuple[np.ndarray, list[str]]:
    """`per_kind` images of each kind as (N, 1, 8, 8) float32, with the kind of each.

    `digits` are the held-out test digits, (M, 1, 8, 8), used only for the `corrupted` kind.
    """
    rng = np.random.default_rng(ANOMALY_SEED)
    flat = digits[:, 0]
    images: list[np.ndarray] = []
    kinds: list[str] = []
    for kind in ANOMALY_KINDS:
        for i in range(per_kind):
            match kind:
                case "noise":
                    image = _noise(rng)
                case "blank":
                    image = _blank(rng)
                case "strokes":
                    image = _strokes(rng)
                case "shapes":
                    image = _shapes(rng)
                case _:
                    image = _corrupted(rng, flat, i)
            images.append(np.clip(image, 0.0, PIXEL_MAX))
            kinds.append(kind)
    return np.stack(images).astype(np.float32)[:, None], kinds
