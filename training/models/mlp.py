"""Feedforward networks for tables: a classifier and a dense autoencoder, both behind `TabularInput`.

The first layer of each is the tabular transform's graph half (imputation, missing indicators,
standardisation), so the exported graph takes the server's raw feature vector directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from training.fit.tabular import TabularInput


@dataclass
class MLPConfig:
    n_features: int
    n_classes: int = 2
    width: int = 128
    layers: int = 2
    dropout: float = 0.2


def _stack(n_in: int, width: int, layers: int, dropout: float) -> tuple[list[nn.Module], int]:
    modules: list[nn.Module] = []
    for _ in range(layers):
        modules += [nn.Linear(n_in, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout)]
        n_in = width
    return modules, n_in


class TabularMLP(nn.Module):
    def __init__(self, config: MLPConfig, transform: TabularInput) -> None:
        super().__init__()
        self.config = config
        self.transform = transform
        body, width = _stack(transform.width, config.width, config.layers, config.dropout)
        self.body = nn.Sequential(*body, nn.Linear(width, config.n_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.body(self.transform(features))  # (B, n_classes) logits


@dataclass
class DenseAEConfig:
    n_features: int
    width: int = 64
    latent: int = 8
    dropout: float = 0.1


class DenseAutoencoder(nn.Module):
    """Reconstructs the transformed row (standardised numbers, indicators, one-hot) through a bottleneck."""

    def __init__(self, config: DenseAEConfig, transform: TabularInput) -> None:
        super().__init__()
        self.config = config
        self.transform = transform
        n = transform.width
        latent = min(config.latent, max(1, n // 2))
        self.encoder = nn.Sequential(
            nn.Linear(n, config.width), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(config.width, latent)
        )
        self.decoder = nn.Sequential(nn.Linear(latent, config.width), nn.ReLU(), nn.Linear(config.width, n))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(transformed row, its reconstruction), both (B, transformed width)."""
        x = self.transform(features)
        return x, self.decoder(self.encoder(x))


class TabularAnomalyScorer(nn.Module):
    """The exported graph: per-row mean squared reconstruction error of the transformed row."""

    def __init__(self, autoencoder: DenseAutoencoder) -> None:
        super().__init__()
        self.autoencoder = autoencoder

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x, reconstruction = self.autoencoder(features)
        return (reconstruction - x).pow(2).mean(dim=1)  # (B,)
