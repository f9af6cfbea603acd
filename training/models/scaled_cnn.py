"""The image CNN of `fit`, its depth and width scaled to the input size.

Rule (documented in docs/training.md): the image is halved by 2x2 max pooling while its side is even
and at least 8, so the last feature map is 4..7 pixels wide (8 -> 1 block, 28 -> 2, 32 -> 3, 64 -> 4).
Each block is two conv3x3-BN-ReLU layers; block i has `width * 2**i` channels, capped at 4 * width.
The head is dropout, linear to `hidden`, ReLU, dropout, linear. The graph takes raw pixels in the
served `value_range` (0..255 for a user's images, 0..16 for scikit-learn's digits), maps them to 0..1
and applies the training split's per-channel mean and std itself (`PixelScaling`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


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
    value_range: tuple[float, float] = (0.0, 255.0)
    """The served pixel values (`ImagePreprocessing.value_range`), mapped to 0..1 inside the graph."""
    mean: list[float] = field(default_factory=lambda: [0.5])
    std: list[float] = field(default_factory=lambda: [0.25])
    """Per channel, of the training pixels once mapped to 0..1."""

    def n_blocks(self) -> int:
        return self.blocks if self.blocks is not None else halvings(self.image_size)


class PixelScaling(nn.Module):
    """lo..hi -> ((x - lo) / (hi - lo) - mean) / std per channel: the normalisation lives in the graph."""

    def __init__(self, value_range: tuple[float, float], mean: list[float], std: list[float]) -> None:
        super().__init__()
        lo, hi = value_range
        self.lo, self.span = float(lo), float(hi - lo)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return ((pixels - self.lo) / self.span - self.mean) / self.std


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
        self.scale = PixelScaling(config.value_range, config.mean, config.std)
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
