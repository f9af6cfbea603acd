"""Output heads added only for export, so the served graph returns what the model config promises."""

from __future__ import annotations

import torch
from torch import nn


class Probabilities(nn.Module):
    """Wraps a classifier that returns logits; the exported graph returns softmax probabilities.

    Training keeps logits (cross-entropy wants them); the server wants probabilities without knowing
    that a softmax is needed, so the softmax lives in the graph.
    """

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(*inputs), dim=-1)  # (B, n_classes)
