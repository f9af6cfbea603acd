"""Evaluation helpers that run the exported graph through ONNX Runtime (never torch)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from service.schema.config import MODEL_FILE


def open_session(version_dir: Path) -> ort.InferenceSession:
    """A CPU session with one intra-op thread: small graphs, busy shared cores (see loop.TORCH_THREADS)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(version_dir / MODEL_FILE), options, providers=["CPUExecutionProvider"])


def run_in_batches(
    session: ort.InferenceSession, feeds: Mapping[str, np.ndarray], batch_size: int = 256
) -> list[np.ndarray]:
    """All outputs for inputs that share their leading (batch) axis, computed `batch_size` rows at a time."""
    n = len(next(iter(feeds.values())))
    parts: list[list[np.ndarray]] = []
    for start in range(0, n, batch_size):
        parts.append(session.run(None, {k: v[start : start + batch_size] for k, v in feeds.items()}))
    return [np.concatenate(outputs) for outputs in zip(*parts, strict=True)]


def header(name: str, version: int, n: int) -> dict[str, Any]:
    """The fields every `evaluate --json` object starts with."""
    return {"model": name, "version": version, "split": "test", "n": n}


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, positive: int | None = None) -> dict[str, float]:
    """Accuracy, plus precision/recall/F1 of the positive class when there is one (binary tasks)."""
    metrics = {"accuracy": float(accuracy_score(y_true, y_pred))}
    if positive is not None:
        metrics["precision"] = float(precision_score(y_true, y_pred, pos_label=positive, zero_division=0))
        metrics["recall"] = float(recall_score(y_true, y_pred, pos_label=positive, zero_division=0))
        metrics["f1"] = float(f1_score(y_true, y_pred, pos_label=positive, zero_division=0))
    else:
        metrics["macro_f1"] = float(f1_score(y_true, y_pred, average="macro"))
    return metrics
