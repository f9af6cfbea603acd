"""digits-cnn: a small convolutional classifier for 8x8 digits.

Two conv blocks (conv, batch norm, ReLU; max pooling after each) and a dropout-regularised MLP head.
The input is the raw 0..16 pixel grid; scaling to 0..1 happens inside the graph so that no client or
server has to know the training normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class CNNConfig:
    channels: tuple[int, int] = (32, 64)
    hidden: int = 128
    dropout: float = 0.3
    n_classes: int = 10
    pixel_max: float = 16.0
    image_size: int = 8


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class DigitsCNN(nn.Module):
    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2 = config.channels
        self.features = nn.Sequential(
            conv_bn_relu(1, c1),
            conv_bn_relu(c1, c1),
            nn.MaxPool2d(2),
            conv_bn_relu(c1, c2),
            nn.MaxPool2d(2),
        )
        side = config.image_size // 4
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(config.dropout),
            nn.Linear(c2 * side * side, config.hidden),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.n_classes),
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels / self.config.pixel_max  # (B, 1, 8, 8) in 0..1
        x = self.features(x)  # (B, c2, 2, 2)
        return self.head(x)  # (B, n_classes) logits
