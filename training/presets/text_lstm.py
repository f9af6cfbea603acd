"""text-lstm: `fit --task text-classification --arch lstm` on the SMS Spam Collection, with fixed settings.

The equivalent user command, were the messages a CSV with a split column:
`nnserve-train fit text-lstm --task text-classification --data SMS.csv --split-column split
--positive-label spam --arch lstm --width 64 --layers 1 --vocab-size 4000 --max-length 128 --epochs 25
--batch-size 64 --lr 3e-3 --weight-decay 1e-4 --patience 5`. The LSTM is served padded to max_length.
"""

from __future__ import annotations

from training.presets import Preset, as_family, spam

PRESET = Preset(
    name="text-lstm",
    task="text-classification",
    summary="bidirectional LSTM on the SMS Spam Collection (text classification, ham/spam)",
    source=spam.SOURCE,
    load=spam.load,
    settings={
        **spam.SETTINGS,
        "arch": "lstm",
        "layers": 1,
        "epochs": 25,
        "lr": 3e-3,
        "weight_decay": 1e-4,
        "patience": 5,
    },
)
FAMILY = as_family(PRESET)
