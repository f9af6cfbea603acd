"""A class-conditional DCGAN for small grey images: generator and projection discriminator.

The generator maps a latent vector `z` and a class label to an image: `z` and a label embedding are
concatenated, projected to a 2x2 feature map and upsampled twice (nearest + conv3x3, the checkerboard-free
alternative to transposed convolutions) to 8x8. The discriminator is a spectrally normalised conv net
whose class-conditioning is a projection (Miyato & Koyama 2018): score = w.h + embed(label).h, which
conditions far more strongly than concatenating the label to the input. Only the generator is exported.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


@dataclass
class GANConfig:
    z_dim: int = 32
    n_classes: int = 10
    """0 = unconditional: the label input is accepted but ignored (its embedding is not used)."""
    embed_dim: int = 16
    g_channels: tuple[int, int, int] = (128, 64, 32)
    d_channels: tuple[int, int] = (64, 128)
    image_size: int = 8
    """Square images, a multiple of 4 (two 2x upsamplings from image_size // 4)."""
    channels: int = 1
    pixel_max: float = 16.0
    """Images span 0..pixel_max: the generator's tanh is rescaled inside the graph."""


def _up_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


class Generator(nn.Module):
    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        c0, c1, c2 = config.g_channels
        self.side = config.image_size // 4
        conditional = config.n_classes > 0
        self.embed = nn.Embedding(config.n_classes, config.embed_dim) if conditional else None
        width = config.z_dim + (config.embed_dim if conditional else 0)
        self.project = nn.Sequential(
            nn.Linear(width, c0 * self.side * self.side, bias=False),
            nn.BatchNorm1d(c0 * self.side * self.side),
            nn.ReLU(),
        )
        self.body = nn.Sequential(
            _up_block(c0, c1), _up_block(c1, c2), nn.Conv2d(c2, config.channels, 3, padding=1), nn.Tanh()
        )

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        """(B, z_dim) float, (B,) int64 -> (B, channels, size, size) in 0..pixel_max.

        `label` is ignored (and may be left out, as the unconditional export does) when n_classes is 0."""
        if self.embed is not None and label is None:
            raise ValueError("a class-conditional generator needs `label`")
        h = torch.cat([z, self.embed(label)], dim=1) if self.embed is not None and label is not None else z
        h = self.project(h).view(-1, self.config.g_channels[0], self.side, self.side)
        return (self.body(h) + 1.0) * (self.config.pixel_max / 2.0)


class Discriminator(nn.Module):
    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2 = config.d_channels
        self.features = nn.Sequential(
            spectral_norm(nn.Conv2d(config.channels, c1, 3, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(c1, c1, 4, stride=2, padding=1)),  # size / 2
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(c1, c2, 4, stride=2, padding=1)),  # size / 4
            nn.LeakyReLU(0.2),
        )
        self.score = spectral_norm(nn.Linear(c2, 1))
        self.embed = spectral_norm(nn.Embedding(config.n_classes, c2)) if config.n_classes > 0 else None

    def forward(self, image: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in 0..pixel_max, (B,) -> (B,) logits (real > 0)."""
        x = image * (2.0 / self.config.pixel_max) - 1.0
        h = self.features(x).sum(dim=(2, 3))  # (B, c2): global sum pooling
        out = self.score(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(label) * h).sum(dim=1)
        return out
