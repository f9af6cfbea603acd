"""digits-cnn: `fit --task image-classification` on scikit-learn's 8x8 digits, with fixed settings.

The equivalent user command, were the digits a CSV of PNG paths with a split column:
`nnserve-train fit digits-cnn --task image-classification --data DIGITS --split-column split --width 16
--layers 2 --augment affine --epochs 60 --batch-size 64 --lr 3e-3 --weight-decay 5e-4 --patience 12`.
Width 16 rather than the task's default 32: a third of the compute per image (raw ONNX Runtime, batch
32: 125,000 images/s against 36,000 at width 32 and 55,000 for the earlier hand-written CNN), which is
what a served model's cost per request is made of, at no loss on the floors (test accuracy 0.997).
"""

from __future__ import annotations

from training.data.digits import SOURCE, decoded_digits
from training.fit.options import FitOptions
from training.fit.tasks.image_classification import LabelledImages, labelled
from training.presets import Preset, as_family


def load(options: FitOptions) -> LabelledImages:
    """The digits (uint8 0..16) with the fixed split of training/data/splits.py as their split values."""
    return labelled(decoded_digits(), options)


PRESET = Preset(
    name="digits-cnn",
    task="image-classification",
    summary="CNN on scikit-learn's 8x8 handwritten digits (image classification)",
    source=SOURCE,
    load=load,
    settings={
        "split_column": "split",
        "width": 16,
        "layers": 2,
        "augment": "affine",
        "epochs": 60,
        "batch_size": 64,
        "lr": 3e-3,
        "weight_decay": 5e-4,
        "patience": 12,
    },
)
FAMILY = as_family(PRESET)
