"""What every task shares: label checks, device choice, the training call, loaders and metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import torch
from sklearn.metrics import precision_score, recall_score, roc_auc_score
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from training.evaluate import classification_metrics
from training.fit.errors import DataError
from training.fit.options import FitOptions
from training.fit.split import Split
from training.loop import Batches, FitConfig, FitResult, Step, StepOutput, fit, seed_everything


def class_labels(labels: Sequence[str], where: str) -> list[str]:
    """The sorted distinct labels; a DataError unless there are at least two."""
    distinct = sorted(set(labels))
    if len(distinct) < 2:
        found = f"only the class {distinct[0]!r}" if distinct else "no class"
        raise DataError(f"{where}: {found}; classification needs at least two classes")
    return distinct


def fit_config(defaults: FitConfig, options: FitOptions) -> FitConfig:
    """The task's defaults with the user's --epochs, --batch-size, --lr, --weight-decay and --patience."""
    given = {
        "epochs": options.epochs,
        "batch_size": options.batch_size,
        "lr": options.lr,
        "weight_decay": options.weight_decay,
        "patience": options.patience,
    }
    return replace(defaults, **{key: value for key, value in given.items() if value is not None})


def device(options: FitOptions) -> torch.device:
    if options.device == "cuda" and not torch.cuda.is_available():
        raise DataError("--device cuda: torch sees no CUDA device")
    if options.device == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def _moved(batch: Any, target: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(target, non_blocking=True)
    if isinstance(batch, tuple | list):
        return type(batch)(_moved(b, target) for b in batch)
    return batch


def train(
    model: nn.Module, step: Step, train_batches: Batches, val_batches: Batches, config: FitConfig, options: FitOptions
) -> FitResult:
    """The shared loop (early stopping, schedule, progress), on --device; the model ends on the CPU."""
    target = device(options)
    model.to(target)

    def on_device(net: nn.Module, batch: Any) -> StepOutput:
        return step(net, _moved(batch, target))

    result = fit(
        model,
        on_device if target.type != "cpu" else step,
        train_batches,
        val_batches,
        config,
        desc=options.name,
        dry_run=options.dry_run,
        progress=options.progress,
    )
    model.cpu().eval()
    return result


def seed(options: FitOptions) -> torch.Generator:
    return seed_everything(options.seed)


def loader(
    arrays: Sequence[np.ndarray], batch_size: int, shuffle: bool, generator: torch.Generator
) -> DataLoader[tuple[torch.Tensor, ...]]:
    dataset = TensorDataset(*(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays))
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)


def classify_step(net: nn.Module, batch: tuple[torch.Tensor, ...]) -> StepOutput:
    *inputs, y = batch
    logits = net(*(x.float() if x.dtype == torch.uint8 else x for x in inputs))
    loss = nn.functional.cross_entropy(logits, y)
    return StepOutput(loss, len(y), float((logits.argmax(1) == y).sum()))


def classification(y_true: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Accuracy and macro F1 (any number of classes) from the exported graph's probabilities."""
    return classification_metrics(y_true, np.argmax(probabilities, axis=1))


def anomaly_metrics(scores: np.ndarray, is_anomaly: np.ndarray | None, threshold: float) -> dict[str, float]:
    """AUROC and precision/recall at the threshold when anomalies are known; the normal flag rate always."""
    flagged = (scores > threshold).astype(np.int64)
    if is_anomaly is None or is_anomaly.min() == is_anomaly.max():
        normal = flagged if is_anomaly is None else flagged[is_anomaly == 0]
        return {"threshold": threshold, "false_positive_rate": float(normal.mean()) if len(normal) else 0.0}
    return {
        "auroc": float(roc_auc_score(is_anomaly, scores)),
        "threshold": threshold,
        "precision": float(precision_score(is_anomaly, flagged, zero_division=0)),
        "recall": float(recall_score(is_anomaly, flagged, zero_division=0)),
        "false_positive_rate": float(flagged[is_anomaly == 0].mean()),
        "n_normal": int((is_anomaly == 0).sum()),
        "n_anomalies": int(is_anomaly.sum()),
    }


def data_summary(split: Split, source: str, **extra: Any) -> dict[str, Any]:
    return {
        "source": source,
        "split": split.rule,
        "train": len(split.train),
        "validation": len(split.val),
        "test": len(split.test),
        "duplicates_dropped": split.duplicates_dropped,
        **extra,
    }


def hyper(obj: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(obj).items()}
