"""Class probabilities -> per-instance answers: the best label, its score and the `top_k` list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

DEFAULT_TOP_K = 3


def top_k(probabilities: NDArray[Any], labels: Sequence[str], k: int) -> list[dict[str, Any]]:
    """One answer per row of (N, n_labels) probabilities; k is capped at the number of labels."""
    rows = probabilities.reshape(len(probabilities), -1)  # (N, L)
    k = min(k, rows.shape[1])
    order = np.argsort(-rows, axis=1, kind="stable")[:, :k]  # (N, k)
    answers = []
    for row, best in zip(rows, order, strict=True):
        ranked = [{"label": labels[i], "score": float(row[i])} for i in best]
        answers.append({"label": ranked[0]["label"], "score": ranked[0]["score"], "top_k": ranked})
    return answers
