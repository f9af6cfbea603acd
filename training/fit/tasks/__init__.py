"""The task registry: task name -> the module that trains it. Adding a task is one module and one line.

Each module exposes `SUMMARY`, `load` (read and check the user's data at `options.data`, raising
`DataError` before anything is trained or written), `publish` (train on loaded data, export, evaluate,
publish atomically) and `evaluate` (test metrics of an exported version on the loaded data's test
split). A preset (training/presets/) hands `publish` its bundled data in the form `load` returns, so
the bundled models run the same code as a user's. Modules are imported only when their task runs, so
`--help` stays instant.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any, Protocol

from training.family import TrainResult
from training.fit.options import FitOptions

TASKS: dict[str, str] = {
    "image-classification": "training.fit.tasks.image_classification",
    "text-classification": "training.fit.tasks.text_classification",
    "tabular-classification": "training.fit.tasks.tabular_classification",
    "anomaly-detection": "training.fit.tasks.anomaly_detection",
    "text-generation": "training.fit.tasks.text_generation",
    "image-generation": "training.fit.tasks.image_generation",
}


class TaskModule(Protocol):
    SUMMARY: str

    def load(self, options: FitOptions) -> Any: ...

    def publish(self, data: Any, options: FitOptions, started: float) -> TrainResult: ...

    def evaluate(self, data: Any, options: FitOptions, version_dir: Path) -> dict[str, Any]: ...


def task_names() -> list[str]:
    return list(TASKS)


def get_task(name: str) -> TaskModule:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    module: TaskModule = importlib.import_module(TASKS[name])
    return module


def run(options: FitOptions) -> TrainResult:
    """`nnserve-train fit`: load and check the user's data, then train and publish."""
    started = time.perf_counter()
    task = get_task(options.task)
    return task.publish(task.load(options), options, started)
