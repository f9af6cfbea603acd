"""What the CLI needs of a bundled model (a preset of a `fit` task): train, evaluate, describe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainOptions:
    repository: Path
    """Model repository root; the family writes `<repository>/<name>/config.yaml` and `<version>/...`."""
    seed: int = 0
    epochs: int | None = None
    """None = the family's default (early stopping may end sooner)."""
    dry_run: bool = False
    """One batch of training, then the full export/parity/repository path: what CI runs for every family."""
    version: int | None = None
    """None = one more than the highest version present."""
    progress: bool = True


@dataclass(frozen=True)
class TrainResult:
    name: str
    version: int
    version_dir: Path
    metrics: dict[str, Any]
    seconds: float


@dataclass(frozen=True)
class Family:
    name: str
    """Model name in the repository, e.g. `digits-cnn`."""
    summary: str
    task: str
    """The `fit` task it is a preset of (training/presets/)."""
    train: Callable[[TrainOptions], TrainResult]
    evaluate: Callable[[Path, int | None], dict[str, Any]]
    """(repository, version or None for latest) -> the JSON object that `nnserve-train evaluate NAME --json`
    prints. Runs the exported model.onnx through ONNX Runtime, never torch."""
