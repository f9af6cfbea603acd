"""The task registry: task name -> the module that trains it. Adding a task is one module and one line.

Each module exposes `SUMMARY: str` and `run(options: FitOptions) -> TrainResult`, which loads and
checks the data (raising `DataError` before anything is trained or written), trains, and publishes.
Modules are imported only when their task runs, so `--help` stays instant.
"""

from __future__ import annotations

import importlib
from typing import Protocol

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

    def run(self, options: FitOptions) -> TrainResult: ...


def task_names() -> list[str]:
    return list(TASKS)


def get_task(name: str) -> TaskModule:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    module: TaskModule = importlib.import_module(TASKS[name])
    return module
