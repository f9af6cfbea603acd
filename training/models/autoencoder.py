"""digits-ae: a convolutional autoencoder for 8x8 digits whose reconstruction error is an anomaly score.

Trained on normal digits only, it learns to rebuild digits through a narrow bottleneck; anything else
(noise, blank, random strokes, corrupted digits) comes back wrong, and the error says how wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class AutoencoderConfig:
    channels: tuple[int, int] = (16, 32)
    latent: int = 12
    dropout: float = 0.1
    pixel_max: float = 16.0


class DigitsAutoencoder(nn.Module):
    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2 = config.channels
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1, bias=False),  # (B, c1, 8, 8)
            nn.BatchNorm2d(c1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1, bias=False),  # (B, c2, 4, 4)
            nn.BatchNorm2d(c2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Dropout(config.dropout),
            nn.Linear(c2 * 4 * 4, config.latent),  # (B, latent)
        )
        self.decoder = nn.Sequential(
            nn.Linear(config.latent, c2 * 4 * 4),
            nn.ReLU(),
            nn.Unflatten(1, (c2, 4, 4)),  # (B, c2, 4, 4)
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1, bias=False),  # (B, c1, 8, 8)
            nn.BatchNorm2d(c1),
            nn.ReLU(),
            nn.Conv2d(c1, 1, 3, padding=1),  # (B, 1, 8, 8)
            nn.Sigmoid(),
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Reconstruction of `pixels`, both in the raw 0..16 scale, (B, 1, 8, 8)."""
        z = self.encoder(pixels / self.config.pixel_max)  # (B, latent)
        return self.decoder(z) * self.config.pixel_max


class AnomalyScorer(nn.Module):
    """The exported graph: per-image mean squared reconstruction error (0..16 scale), reconstruction."""

    def __init__(self, autoencoder: DigitsAutoencoder) -> None:
        super().__init__()
        self.autoencoder = autoencoder

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reconstruction = self.autoencoder(pixels)  # (B, 1, 8, 8)
        score = (reconstruction - pixels).pow(2).mean(dim=(1, 2, 3))  # (B,)
        return score, reconstruction
