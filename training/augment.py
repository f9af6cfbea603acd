"""Small random shifts, rotations and scalings of digit images, applied to each training batch."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class AffineJitter:
    max_shift: float = 1.0
    """Pixels, in each direction."""
    max_degrees: float = 12.0
    max_scale: float = 0.1
    """Relative: 0.1 scales by 0.9..1.1."""

    def describe(self) -> str:
        return (
            f"augmentation: random shifts up to {self.max_shift:g} px, rotations up to {self.max_degrees:g} "
            f"degrees and scaling by up to {self.max_scale:.0%}, fresh for every training batch"
        )

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B, C, H, W) -> same shape, bilinearly resampled; uncovered border pixels become 0 (background)."""
        B, _, H, _ = images.shape

        def uniform(limit: float) -> torch.Tensor:
            return (torch.rand(B, generator=generator) * 2 - 1) * limit  # (B,)

        angle = uniform(math.radians(self.max_degrees))
        scale = 1.0 + uniform(self.max_scale)
        shift = torch.stack([uniform(self.max_shift), uniform(self.max_shift)], dim=1) * (2.0 / H)  # (B, 2)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack(
            [torch.stack([cos, -sin, shift[:, 0]], dim=1), torch.stack([sin, cos, shift[:, 1]], dim=1)], dim=1
        )  # (B, 2, 3): output grid -> input sampling positions
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@dataclass(frozen=True)
class PixelDropout:
    """Denoising corruption: each image loses a random share (0..max_rate) of its pixels to background.

    An autoencoder trained to restore the clean image from this learns a prior of the normal images:
    given a blank or broken image it draws a normal one, not a copy, so the reconstruction error of
    anything else is large. Images are in 0..1; `background` is the level a lost pixel takes (0 for
    bright ink on dark, 1 for dark ink on light).
    """

    max_rate: float = 0.5
    background: float = 0.0

    def describe(self) -> str:
        return (
            f"denoising: each training image has a random 0..{self.max_rate:.0%} of its pixels set to "
            "background, and the target is the clean image"
        )

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        rate = torch.rand(len(images), 1, 1, 1, generator=generator) * self.max_rate  # (B, 1, 1, 1)
        keep = (torch.rand(images.shape, generator=generator) >= rate).to(images.device)  # (B, C, H, W)
        return torch.where(keep, images, torch.full_like(images, self.background))
