"""The bundled models as presets of `fit`: bundled data in the task's own form, plus fixed settings.

`nnserve-train train digits-cnn` runs the very task code that `nnserve-train fit NAME --task
image-classification --data PATH` runs on a user's folder: the same split rules, training craft,
export with parity, classical baseline, card, metrics and atomic publish. A preset only supplies what
a user would supply on the command line (the data and the options), so every improvement to a task
reaches the bundled models and the users' models alike, and the committed models prove the task code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from training.evaluate import header
from training.family import Family, TrainOptions, TrainResult
from training.fit.options import FitOptions
from training.fit.tasks import get_task
from training.repository import new_version_number, resolve_version


@dataclass(frozen=True)
class Preset:
    name: str
    """Model name in the repository, e.g. `digits-cnn`."""
    task: str
    """The `fit` task it runs, e.g. `image-classification`."""
    summary: str
    source: str
    """What the bundled data is, shown where a user's run shows its --data path."""
    load: Callable[[FitOptions], Any]
    """The bundled data, in the form the task's own `load` returns for a user's files."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """FitOptions fields the preset fixes (architecture, schedule, augmentation): its `fit` flags."""


def fit_flags(preset: Preset) -> str:
    """The preset's settings as `fit` flags: what to add to `fit NAME --task T --data PATH` to train a
    model on your own data the way the bundled one is trained (the bundled split column aside)."""
    flags = []
    for key, value in preset.settings.items():
        if key != "split_column":
            flags.append(f"--{key.replace('_', '-')} {value}")
    return " ".join(flags)


def retrain_command(name: str, options: TrainOptions, version: int) -> str:
    parts = ["nnserve-train train", name, f"--seed {options.seed}", f"--version {version}"]
    if options.epochs is not None:
        parts.append(f"--epochs {options.epochs}")
    if options.dry_run:
        parts.append("--dry-run")
    parts.append(f"--repository {options.repository}")
    return " ".join(parts)


def fit_options(preset: Preset, options: TrainOptions, version: int | None = None) -> FitOptions:
    """The `fit` options equivalent to `nnserve-train train NAME` with these train options."""
    fixed = FitOptions(name=preset.name, task=preset.task, data=Path(preset.source), **preset.settings)
    return replace(
        fixed,
        repository=options.repository,
        version=options.version if version is None else version,
        seed=options.seed,
        epochs=fixed.epochs if options.epochs is None else options.epochs,
        dry_run=options.dry_run,
        progress=options.progress,
        command=retrain_command(preset.name, options, version or options.version or 1),
    )


def train(preset: Preset, options: TrainOptions) -> TrainResult:
    started = time.perf_counter()
    version = new_version_number(options.repository, preset.name, options.version)
    settings = fit_options(preset, options, version)
    task = get_task(preset.task)
    return task.publish(preset.load(settings), settings, started)


def evaluate(preset: Preset, repository: Path, version: int | None) -> dict[str, Any]:
    """The test metrics of an exported version, from ONNX Runtime on the preset's fixed test split."""
    number, version_dir = resolve_version(repository, preset.name, version)
    settings = fit_options(preset, TrainOptions(repository=repository), number)
    metrics = get_task(preset.task).evaluate(preset.load(settings), settings, version_dir)
    return {**header(preset.name, number, int(metrics.get("n", 0))), **metrics}


def as_family(preset: Preset) -> Family:
    return Family(
        name=preset.name,
        summary=preset.summary,
        task=preset.task,
        train=lambda options: train(preset, options),
        evaluate=lambda repository, version: evaluate(preset, repository, version),
    )
