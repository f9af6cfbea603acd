"""Anomaly scores -> per-instance verdicts against the threshold calibrated at training time."""

from __future__ import annotations

from typing import Any

from numpy.typing import NDArray

from service.schema.config import AnomalySettings


def verdicts(scores: NDArray[Any], settings: AnomalySettings) -> list[dict[str, Any]]:
    """`is_anomaly` is `score > threshold`, the rule the threshold was calibrated for."""
    return [
        {
            "score": float(score),
            "threshold": settings.threshold,
            "is_anomaly": bool(score > settings.threshold),
        }
        for score in scores.reshape(len(scores), -1)[:, 0]
    ]
