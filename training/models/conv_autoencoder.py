"""The convolutional autoencoder of `fit` for images of any size; score = reconstruction error.

Encoder: strided conv3x3-BN-ReLU blocks, each halving the side, as many as `scaled_cnn.halvings`
allows (8 -> 1, 28 -> 2, 32 -> 3, 64 -> 4), channels `width * 2**i` capped at 4 * width; dropout and a
linear map to a `latent`-dimensional code. The decoder mirrors it with transposed convolutions and
ends in a sigmoid. The network works in 0..1: the graph maps the served `value_range` (the digits'
0..16, decoded files' 0..1) onto it and the reconstruction back, so the score is in served units.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from training.models.scaled_cnn import halvings


@dataclass
class ConvAEConfig:
    image_size: int
    channels: int = 1
    width: int = 16
    latent: int = 32
    dropout: float = 0.1
    value_range: tuple[float, float] = (0.0, 1.0)
    """The served pixel range (the image settings' `value_range`); the network sees it mapped onto 0..1."""


class ConvAutoencoder(nn.Module):
    def __init__(self, config: ConvAEConfig) -> None:
        super().__init__()
        self.config = config
        widths = [min(config.width * 2**i, 4 * config.width) for i in range(halvings(config.image_size))]
        side = config.image_size >> len(widths)
        encoder: list[nn.Module] = []
        c_in = config.channels
        for c_out in widths:
            encoder += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            c_in = c_out
        encoder += [nn.Flatten(), nn.Dropout(config.dropout), nn.Linear(c_in * side * side, config.latent)]
        decoder: list[nn.Module] = [
            nn.Linear(config.latent, c_in * side * side),
            nn.ReLU(),
            nn.Unflatten(1, (c_in, side, side)),
        ]
        for c_out in [*reversed(widths[:-1]), widths[0]]:
            decoder += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
            c_in = c_out
        decoder += [nn.Conv2d(c_in, config.channels, 3, padding=1), nn.Sigmoid()]
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)

    def unit(self, pixels: torch.Tensor) -> torch.Tensor:
        """Served `pixels` mapped onto 0..1, the scale the network reconstructs in."""
        low, high = self.config.value_range
        return (pixels - low) / (high - low)

    def forward(self, unit_pixels: torch.Tensor) -> torch.Tensor:
        """Reconstruction of `unit_pixels` (0..1, see `unit`), in 0..1, (B, C, H, W)."""
        return self.decoder(self.encoder(unit_pixels))


class ImageAnomalyScorer(nn.Module):
    """The exported graph: served pixels -> per-image mean squared error and the reconstruction, both in
    the served `value_range` units (so `score` is the MSE between `reconstruction` and the input)."""

    def __init__(self, autoencoder: ConvAutoencoder) -> None:
        super().__init__()
        self.autoencoder = autoencoder

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low, high = self.autoencoder.config.value_range
        reconstruction = low + self.autoencoder(self.autoencoder.unit(pixels)) * (high - low)  # (B, C, H, W)
        score = (reconstruction - pixels).pow(2).mean(dim=(1, 2, 3))  # (B,)
        return score, reconstruction
