"""Turning a trained model into a repository version: export, config, evaluation, card, metrics, curves.

Every family ends its `train` with `publish`, so all versions are written the same way and every
figure in a card comes from running the exported graph, not the torch model.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from service.schema.config import CARD_FILE, CURVES_FILE, METRICS_FILE, MODEL_FILE, ModelConfig
from training.card import CardText, render_card
from training.curves import plot_curves
from training.export import ExportSpec, export_onnx
from training.family import TrainOptions, TrainResult
from training.loop import FitConfig, FitResult
from training.repository import commit_version, new_version_number, staging_dir

Evaluate = Callable[[Path, int | None], dict[str, Any]]


@dataclass(frozen=True)
class Release:
    """What a family hands over once training is done."""

    config: ModelConfig
    export: ExportSpec
    fit: FitResult
    fit_config: FitConfig
    hyperparameters: Mapping[str, Any]
    card: CardText
    files: Mapping[str, Callable[[Path], object]] = field(default_factory=dict)
    """Extra files for the version folder: file name -> function writing it to the given path."""
    extra_metrics: Mapping[str, Any] = field(default_factory=dict)
    """Family-specific figures for metrics.json (e.g. threshold calibration)."""


def retrain_command(name: str, options: TrainOptions, version: int) -> str:
    parts = ["nnserve-train train", name, f"--seed {options.seed}", f"--version {version}"]
    if options.epochs is not None:
        parts.append(f"--epochs {options.epochs}")
    if options.dry_run:
        parts.append("--dry-run")
    parts.append(f"--repository {options.repository}")
    return " ".join(parts)


def publish(release: Release, options: TrainOptions, evaluate: Evaluate, started: float) -> TrainResult:
    name = release.config.name
    if name is None:
        raise ValueError("a released config must carry the model name")
    version = new_version_number(options.repository, name, options.version)
    staged = staging_dir(options.repository, name, version)
    parity = export_onnx(release.export, staged / MODEL_FILE, seed=options.seed)
    for file_name, write in release.files.items():
        write(staged / file_name)
    version_dir = commit_version(options.repository, name, version, staged, release.config)

    test_metrics = evaluate(options.repository, version)
    training = release.fit.summary()
    fit_config = asdict(release.fit_config)
    parameters = sum(p.numel() for p in release.export.module.parameters())
    plot_curves(release.fit, version_dir / CURVES_FILE, f"{name} v{version}")
    seconds = time.perf_counter() - started
    metrics = {
        "model": name,
        "version": version,
        "dry_run": options.dry_run,
        "seed": options.seed,
        "test": test_metrics,
        "parity_max_abs_diff": {str(b): d for b, d in parity.max_abs_diff.items()},
        "parameters": parameters,
        "hyperparameters": dict(release.hyperparameters),
        "fit_config": fit_config,
        **release.extra_metrics,
        "training": training,
        "seconds_total": round(seconds, 2),
    }
    (version_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    card = render_card(
        config=release.config,
        version=version,
        text=release.card,
        hyperparameters=release.hyperparameters,
        training=training,
        fit_config=fit_config,
        parameters=parameters,
        test_metrics=test_metrics,
        parity=parity.max_abs_diff,
        retrain=retrain_command(name, options, version),
        dry_run=options.dry_run,
    )
    (version_dir / CARD_FILE).write_text(card, encoding="utf-8")
    return TrainResult(name=name, version=version, version_dir=version_dir, metrics=test_metrics, seconds=seconds)
