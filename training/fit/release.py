"""Publishing a `fit` result atomically, then optionally asking a running server to load it.

The whole version (model.onnx, tokenizer, card.md, metrics.json, curves.png) is written and evaluated
inside `<model>/.tmp-<version>-<pid>`, a name the server never loads (not a number), and renamed to
`<model>/<version>` only when complete. An existing version of that number is first renamed aside
(`.old-<version>-<pid>`) and deleted after the swap. config.yaml is then replaced with os.replace, so a
reader sees the old file or the new one, never a partial one. Any failure before the rename deletes
the temporary folder (and the model folder if this run created it): the repository is as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from service.schema.config import (
    CARD_FILE,
    CONFIG_FILE,
    CURVES_FILE,
    METRICS_FILE,
    MODEL_FILE,
    ModelConfig,
    dump_config,
)
from training.card import CardText, render_card
from training.curves import plot_curves
from training.export import ExportSpec, export_onnx
from training.family import TrainResult
from training.fit.options import FitOptions
from training.loop import FitConfig, FitResult
from training.repository import model_dir, new_version_number


@dataclass(frozen=True)
class FitRelease:
    config: ModelConfig
    export: ExportSpec
    fit: FitResult
    fit_config: FitConfig
    hyperparameters: Mapping[str, Any]
    card: CardText
    evaluate: Callable[[Path], dict[str, Any]]
    """Staged version folder -> test metrics, computed by ONNX Runtime on the exported graph."""
    baseline: Mapping[str, Any]
    """The classical baseline's test metrics on the same split (with its `name`)."""
    data: Mapping[str, Any]
    """What the data source held: counts per split, skipped and duplicate items, the split rule."""
    files: Mapping[str, Callable[[Path], object]] = field(default_factory=dict)
    """Extra files for the version folder (tokenizer.json, checks); run after model.onnx is written."""
    extra_metrics: Mapping[str, Any] = field(default_factory=dict)


def write_config_atomically(directory: Path, config: ModelConfig) -> Path:
    path = directory / CONFIG_FILE
    temporary = directory / f".{CONFIG_FILE}.tmp-{os.getpid()}"
    temporary.write_text(dump_config(config), encoding="utf-8")
    os.replace(temporary, path)
    return path


def _move_into_place(staged: Path, final: Path) -> None:
    if not final.exists():
        staged.rename(final)
        return
    aside = final.parent / f".old-{final.name}-{os.getpid()}"
    final.rename(aside)
    staged.rename(final)
    shutil.rmtree(aside, ignore_errors=True)


def publish_atomically(
    options: FitOptions, config: ModelConfig, write: Callable[[Path, int], dict[str, Any]], started: float
) -> TrainResult:
    """Stage a version with `write(staged_dir, version)` (which returns the test metrics), then swap it in
    and replace config.yaml; on any failure the repository is left as it was (module docstring)."""
    name = options.name
    directory = model_dir(options.repository, name)
    created = not directory.exists()
    version = new_version_number(options.repository, name, options.version)
    staged = directory / f".tmp-{version}-{os.getpid()}"
    try:
        staged.mkdir(parents=True)
        test_metrics = write(staged, version)
        final = directory / str(version)
        _move_into_place(staged, final)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        if created:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    write_config_atomically(directory, config)
    seconds = time.perf_counter() - started
    return TrainResult(name=name, version=version, version_dir=final, metrics=test_metrics, seconds=seconds)


def retrain_line(options: FitOptions) -> str:
    return options.command or f"nnserve-train fit {options.name} --task {options.task} --data {options.data}"


def publish_fit(release: FitRelease, options: FitOptions, started: float) -> TrainResult:
    name = options.name

    def write(staged: Path, version: int) -> dict[str, Any]:
        parity = export_onnx(release.export, staged / MODEL_FILE, seed=options.seed)
        for file_name, write_file in release.files.items():
            write_file(staged / file_name)
        test_metrics = {**release.evaluate(staged), "baseline": dict(release.baseline)}
        training = release.fit.summary()
        fit_config = asdict(release.fit_config)
        parameters = sum(p.numel() for p in release.export.module.parameters())
        plot_curves(release.fit, staged / CURVES_FILE, f"{name} v{version}")
        metrics = {
            "model": name,
            "version": version,
            "task": options.task,
            "dry_run": options.dry_run,
            "seed": options.seed,
            "data": dict(release.data),
            "test": test_metrics,
            "parity_max_abs_diff": {str(b): d for b, d in parity.max_abs_diff.items()},
            "parameters": parameters,
            "hyperparameters": dict(release.hyperparameters),
            "fit_config": fit_config,
            **release.extra_metrics,
            "training": training,
            "seconds_total": round(time.perf_counter() - started, 2),
        }
        (staged / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
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
            retrain=retrain_line(options),
            dry_run=options.dry_run,
        )
        (staged / CARD_FILE).write_text(card, encoding="utf-8")
        return test_metrics

    return publish_atomically(options, release.config, write, started)


class ReloadError(RuntimeError):
    """The server did not accept the load request; the version is published regardless."""


def request_reload(url: str, name: str, api_key: str | None, timeout_s: float = 120.0) -> int:
    """POST <url>/v2/repository/models/<name>/load; returns the HTTP status (2xx) or raises ReloadError."""
    endpoint = f"{url.rstrip('/')}/v2/repository/models/{name}/load"
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(endpoint, data=b"{}", headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace")[:500]
        raise ReloadError(f"POST {endpoint}: HTTP {exc.code}: {body}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ReloadError(f"POST {endpoint}: {exc}") from None


def log(message: str) -> None:
    print(f"nnserve-train fit: {message}", file=sys.stderr)
