"""digits-gan: `fit --task image-generation` on scikit-learn's 8x8 digits, judged by digits-cnn, fixed settings.

The equivalent of `nnserve-train fit digits-gan --task image-generation --split-column split --judge
digits-cnn --output-max 16 --png-scale 8 --epochs 100 --batch-size 64` on the digits as `load` holds them
(decoded 0..16 images, the fixed split as their split column). The generator serves the digits' own
0..16 values (what digits-cnn takes) as 64x64 PNGs; digits-cnn must be in the repository first
(`make models` and `nnserve-train all` train it before this one).
"""

from __future__ import annotations

from training.data.digits import PIXEL_MAX, SOURCE, decoded_digits
from training.fit.options import FitOptions
from training.fit.tasks.image_generation import GenerationData, prepared
from training.presets import Preset, as_family

JUDGE = "digits-cnn"


def load(options: FitOptions) -> GenerationData:
    """The digits (uint8 0..16) with the fixed split of training/data/splits.py as their split values."""
    return prepared(decoded_digits(), options)


PRESET = Preset(
    name="digits-gan",
    task="image-generation",
    summary="class-conditional GAN generating the 8x8 digits (image generation, judged by digits-cnn)",
    source=SOURCE,
    load=load,
    settings={
        "split_column": "split",
        "judge": JUDGE,
        "output_max": PIXEL_MAX,
        "png_scale": 8,
        "epochs": 100,
        "batch_size": 64,
    },
)
FAMILY = as_family(PRESET)
