"""digits-ae: `fit --task anomaly-detection` on the bundled digits (normal) plus synthetic anomalies.

The digits keep their fixed split (training/data/splits.py) as split values; the anomalies of
training/data/anomalies.py (made from test digits) join the test split under their kind as label, so
`--normal-label digit` makes every digit normal and every kind a held-out anomaly. The images stay in
the digits' own 0..16 scale (`value_range: [0, 16]`), so `score` is the mean squared reconstruction
error in that scale. Fixed settings: the old family's schedule (120 epochs, patience 15) and the
denoising corruption that gives the autoencoder its digit prior (blank images are caught).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.data.anomalies import ANOMALY_KINDS, make_anomalies
from training.data.digits import IMAGE, load_digits_split
from training.fit.images import DecodedImages
from training.fit.options import FitOptions
from training.fit.tasks.anomaly_detection import AnomalyImages, prepare_images
from training.presets import Preset, as_family

NORMAL_LABEL = "digit"
ANOMALIES_PER_KIND = 60
LAYOUT = (
    f"scikit-learn's `load_digits` (8x8, values 0..16) as normal images labelled `{NORMAL_LABEL}`, in the "
    f"fixed digits split, plus {ANOMALIES_PER_KIND} synthetic anomalies of each kind ({', '.join(ANOMALY_KINDS)}; "
    "training/data/anomalies.py, made from test digits) in the test split, labelled by kind"
)


def load(options: FitOptions) -> AnomalyImages:
    """The bundled images in the form `anomaly_detection.load` gives for a user's labelled images."""
    digits = load_digits_split()
    anomalies, kinds = make_anomalies(digits.test.x, ANOMALIES_PER_KIND)
    parts = [("train", digits.train.x), ("val", digits.val.x), ("test", digits.test.x)]
    files = [Path("load_digits", part, str(i)) for part, x in parts for i in range(len(x))]
    files += [Path("anomalies", kind, str(i)) for i, kind in enumerate(kinds)]
    images = DecodedImages(
        pixels=np.concatenate([x for _, x in parts] + [anomalies]),  # (N, 1, 8, 8) float32, 0..16
        labels=[NORMAL_LABEL] * sum(len(x) for _, x in parts) + kinds,
        files=files,
        skipped=[],
        settings=IMAGE,
        layout=LAYOUT,
        split_values=[part for part, x in parts for _ in range(len(x))] + ["test"] * len(kinds),
    )
    return prepare_images(images, options, IMAGE)


PRESET = Preset(
    name="digits-ae",
    task="anomaly-detection",
    summary="convolutional autoencoder on the digits (anomaly detection, reconstruction error)",
    source="scikit-learn digits + synthetic anomalies",
    load=load,
    settings={
        "normal_label": NORMAL_LABEL,
        "split_column": "split",
        "epochs": 120,
        "batch_size": 64,
        "lr": 3e-3,
        "weight_decay": 1e-4,
        "patience": 15,
        "denoise": 0.5,
        "threshold_percentile": 99.0,
    },
)
FAMILY = as_family(PRESET)
