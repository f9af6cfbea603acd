"""The image CNN of `fit`, its depth and width scaled to the input size.

Rule (documented in docs/training.md): the image is halved by 2x2 max pooling while its side is even
and at least 8, so the last feature map is 4..7 pixels wide (8 -> 1 block, 28 -> 2, 32 -> 3, 64 -> 4).
Each block is two conv3x3-BN-ReLU layers; block i has `width * 2**i` channels, capped at 4 * width.
The head is dropout, linear to `hidden`, ReLU, dropout, linear. The graph takes raw 0..255 pixels and
applies the training split's per-channel mean and std itself (`PixelScaling`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from training.models.cnn import conv_bn_relu


def halvings(size: int) -> int:
    """How many 2x2 poolings the rule applies to a side of `size` pixels."""
    count = 0
    while size % 2 == 0 and size >= 8:
        size //= 2
        count += 1
    return count


@dataclass
class ScaledCNNConfig:
    image_size: int
    channels: int = 1
    n_classes: int = 2
    width: int = 32
    blocks: int | None = None
    """None = the halving rule above."""
    hidden: int = 128
    dropout: float = 0.3
    mean: list[float] = field(default_factory=lambda: [0.5])
    std: list[float] = field(default_factory=lambda: [0.25])

    def n_blocks(self) -> int:
        return self.blocks if self.blocks is not None else halvings(self.image_size)


class PixelScaling(nn.Module):
    """0..255 -> (x / 255 - mean) / std per channel: the normalisation lives in the graph."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels / 255.0 - self.mean) / self.std


class ScaledCNN(nn.Module):
    def __init__(self, config: ScaledCNNConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in, side = config.channels, config.image_size
        for i in range(config.n_blocks()):
            c_out = min(config.width * 2**i, 4 * config.width)
            layers += [conv_bn_relu(c_in, c_out), conv_bn_relu(c_out, c_out), nn.MaxPool2d(2)]
            c_in, side = c_out, side // 2
        self.scale = PixelScaling(config.mean, config.std)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(config.dropout),
            nn.Linear(c_in * side * side, config.hidden),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.n_classes),
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.scale(pixels)))  # (B, n_classes) logits
