"""Every bundled model the CLI knows, imported lazily so `--help` does not pay for torch."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from training.family import Family

if TYPE_CHECKING:
    from training.presets import Preset

# name -> module under training.presets exposing `PRESET` (a `fit` task at fixed settings) and its `FAMILY`
FAMILY_MODULES: dict[str, str] = {
    "digits-cnn": "training.presets.digits_cnn",
    "text-lstm": "training.presets.text_lstm",
    "text-transformer": "training.presets.text_transformer",
    "digits-ae": "training.presets.digits_ae",
    "digits-gan": "training.presets.digits_gan",
    "tiny-gpt": "training.presets.tiny_gpt",
}


def family_names() -> list[str]:
    return list(FAMILY_MODULES)


def _module(name: str) -> Any:
    if name not in FAMILY_MODULES:
        raise KeyError(f"unknown model family {name!r}; known: {', '.join(FAMILY_MODULES)}")
    return importlib.import_module(FAMILY_MODULES[name])


def get_family(name: str) -> Family:
    family: Family = _module(name).FAMILY
    return family


def get_preset(name: str) -> Preset:
    preset: Preset = _module(name).PRESET
    return preset
