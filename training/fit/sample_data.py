"""Data sets in users' formats, written from data that ships inside installed packages (no downloads).

Used by the tests (small fixtures) and by `loadtests/fit_benchmark.py` (the sizes docs/training.md
reports): digits as PNG class folders at any size and in both polarities, the SMS corpus as CSV or
JSONL, scikit-learn's tabular sets as CSV with missing values and a string column, plays as a corpus.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn import datasets

TABULAR_SETS = {"breast_cancer": datasets.load_breast_cancer, "wine": datasets.load_wine, "iris": datasets.load_iris}


def digit_images(size: int, count: int | None = None, seed: int = 0) -> tuple[list[np.ndarray], list[int]]:
    """scikit-learn's digits upscaled to `size` (bilinear), 0..255, with `count` items (cycled, each repeat
    shifted by a pixel or two so repeats are new images, not duplicates)."""
    bunch = datasets.load_digits()
    rng = np.random.default_rng(seed)
    n = count or len(bunch.target)
    images, labels = [], []
    for k in range(n):
        i = k % len(bunch.target)
        base = Image.fromarray((bunch.images[i] * (255.0 / 16.0)).astype(np.uint8)).resize(
            (size, size), Image.Resampling.BILINEAR
        )
        pixels = np.asarray(base)
        if k >= len(bunch.target):
            dy, dx = rng.integers(-2, 3, size=2)
            pixels = np.roll(np.roll(pixels, int(dy), axis=0), int(dx), axis=1)
            pixels = np.clip(pixels.astype(np.int16) + rng.integers(-8, 9, pixels.shape), 0, 255).astype(np.uint8)
        images.append(pixels)
        labels.append(int(bunch.target[i]))
    return images, labels


def write_digit_folders(
    root: Path,
    size: int = 16,
    count: int | None = None,
    both_polarities: bool = True,
    seed: int = 0,
    classes: tuple[int, ...] | None = None,
) -> Path:
    """root/<digit>/<n>.png; with both_polarities every other image is dark ink on a bright background."""
    images, labels = digit_images(size, count, seed)
    for n, (pixels, label) in enumerate(zip(images, labels, strict=True)):
        if classes is not None and label not in classes:
            continue
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        if both_polarities and n % 2:
            pixels = 255 - pixels
        Image.fromarray(pixels).save(folder / f"{n:05d}.png")
    return root


def sms_messages() -> tuple[list[str], list[str]]:
    from training.data.spam import LABELS, data_path, read_messages

    texts, y = read_messages(data_path())
    return texts, [LABELS[int(i)] for i in y]


def write_sms(path: Path, limit: int | None = None, count: int | None = None, seed: int = 0) -> Path:
    """The SMS corpus as .csv/.tsv (text,label) or .jsonl ({"text", "label"}), by the path's extension.

    `limit` keeps the first messages; `count` above the corpus size adds variants of random messages
    (one word dropped and two swapped), new texts in the corpus's style (synthetic-from-real, for timing).
    """
    texts, labels = sms_messages()
    rows = list(zip(texts, labels, strict=True))[:limit]
    rng = np.random.default_rng(seed)
    seen = {t for t, _ in rows}
    while count is not None and len(rows) < count:
        text, label = rows[int(rng.integers(0, len(texts) if limit is None else limit))]
        words = text.split()
        if len(words) < 3:
            continue
        del words[int(rng.integers(0, len(words)))]
        i, j = rng.integers(0, len(words), 2)
        words[i], words[j] = words[j], words[i]
        variant = " ".join(words)
        if variant not in seen:
            seen.add(variant)
            rows.append((variant, label))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows), encoding="utf-8")
    else:
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter="\t" if path.suffix == ".tsv" else ",")
            writer.writerow(["text", "label"])
            writer.writerows(rows)
    return path


def write_tabular(path: Path, name: str, missing: float = 0.05, rows: int | None = None, seed: int = 0) -> Path:
    """A scikit-learn set as CSV: feature columns, a string column `band` (the first feature's tercile,
    as low/mid/high), `missing` of the cells emptied, and `label` (the class name). With `rows` above the
    set's size, rows are resampled with small noise (synthetic-from-real, for timing)."""
    bunch = TABULAR_SETS[name]()
    x, y = bunch.data.astype(np.float64), bunch.target
    rng = np.random.default_rng(seed)
    if rows is not None:
        pick = rng.integers(0, len(y), rows)
        x = x[pick] * (1.0 + rng.normal(0.0, 0.02, (rows, x.shape[1])))
        y = y[pick]
    names = [str(n).replace(" ", "_") for n in bunch.feature_names]
    cuts = np.quantile(x[:, 0], [1 / 3, 2 / 3])
    band = np.where(x[:, 0] < cuts[0], "low", np.where(x[:, 0] < cuts[1], "mid", "high"))
    targets = [str(t) for t in bunch.target_names]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*names, "band", "label"])
        for r in range(len(y)):
            cells = [f"{v:.6g}" for v in x[r]] + [str(band[r])]
            holes = rng.random(len(cells)) < missing
            writer.writerow([("" if h else c) for c, h in zip(cells, holes, strict=True)] + [targets[int(y[r])]])
    return path


def write_corpus(root: Path, plays: tuple[str, ...] = ("macbeth", "julius-caesar", "twelfth-night")) -> Path:
    """A folder of .txt files, one cleaned play each."""
    from training.data.shakespeare import load_plays

    texts = load_plays()
    root.mkdir(parents=True, exist_ok=True)
    for slug in plays:
        (root / f"{slug}.txt").write_text(texts[slug], encoding="utf-8")
    return root
