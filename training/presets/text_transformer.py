"""text-transformer: `fit --task text-classification --arch transformer` on the SMS Spam Collection.

The equivalent user command, were the messages a CSV with a split column:
`nnserve-train fit text-transformer --task text-classification --data SMS.csv --split-column split
--positive-label spam --arch transformer --width 64 --layers 2 --vocab-size 4000 --max-length 128
--epochs 30 --batch-size 64 --lr 1e-3 --weight-decay 1e-2 --patience 5`. Served with `padding: longest`.
"""

from __future__ import annotations

from training.presets import Preset, as_family, spam

PRESET = Preset(
    name="text-transformer",
    task="text-classification",
    summary="transformer encoder on the SMS Spam Collection (text classification, ham/spam)",
    source=spam.SOURCE,
    load=spam.load,
    settings={
        **spam.SETTINGS,
        "arch": "transformer",
        "layers": 2,
        "epochs": 30,
        "lr": 1e-3,
        "weight_decay": 1e-2,
        "patience": 5,
    },
)
FAMILY = as_family(PRESET)
