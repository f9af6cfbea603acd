"""Adversarial training of a conditional generator, reusable by any image family (and by `fit`).

GANs need their own loop: two networks, two optimisers, no validation loss to stop on. The craft that
keeps a small GAN stable, all here and all described by `GANOptions.describe()` for the model card:
- non-saturating loss: the generator maximises log D(G(z)) instead of minimising log(1 - D(G(z))),
  which gives it strong gradients early, when the discriminator rejects everything;
- spectral norm on every discriminator layer (in the model), bounding its Lipschitz constant;
- one-sided label smoothing: real targets 0.9, so the discriminator cannot grow overconfident;
- Adam with the DCGAN betas (0.5, 0.999): less momentum keeps the two-player game from oscillating;
- an exponential moving average of the generator's weights, which is what gets exported: it averages
  out the last steps' oscillation and gives visibly cleaner samples;
- fixed seeds for initialisation, shuffles and noise.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from training.loop import seed_everything
from training.models.gan import Discriminator, GANConfig, Generator

Judge = Callable[[Generator], dict[str, float]]
"""Generator (eval mode) -> quality figures for the history (e.g. conditional accuracy, Fréchet distance)."""


@dataclass(frozen=True)
class GANOptions:
    epochs: int = 300
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    real_target: float = 0.9
    """One-sided label smoothing: the discriminator's target for real images (fakes stay 0)."""
    ema_decay: float = 0.999
    judge_every: int = 10
    """Epochs between quality measurements (the last epoch is always measured)."""
    seed: int = 0
    dry_run: bool = False
    """One batch, one epoch: the whole path at no cost."""
    progress: bool = True

    def describe(self) -> list[str]:
        return [
            "loss: non-saturating GAN loss (binary cross-entropy; the generator maximises log D(G(z)))",
            "spectral norm on every discriminator layer; class conditioning by projection",
            f"one-sided label smoothing: real targets {self.real_target}, fake targets 0",
            f"Adam, learning rates {self.lr_g} (generator) and {self.lr_d} (discriminator), betas {self.betas}",
            f"exported weights: exponential moving average of the generator (decay {self.ema_decay})",
            f"{self.epochs} epochs of batch {self.batch_size}, seed {self.seed} for init, shuffles and noise",
        ]


@dataclass(frozen=True)
class GANEpoch:
    epoch: int
    d_loss: float
    g_loss: float
    d_real: float
    """Mean D(x) on real images (probability), a health check: near 1 means D has won."""
    d_fake: float
    quality: dict[str, float]
    """The judge's figures on the EMA generator; empty on epochs not judged."""
    seconds: float


@dataclass
class GANResult:
    generator: Generator
    """The EMA generator, in eval mode."""
    history: list[GANEpoch] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "epochs_run": len(self.history),
            "seconds": round(self.seconds, 2),
            "history": [asdict(r) for r in self.history],
        }


def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters(), strict=True):
            e.lerp_(p, 1.0 - decay)
        for e, b in zip(ema.buffers(), model.buffers(), strict=True):
            e.copy_(b)


def train_gan(
    images: np.ndarray,
    labels: np.ndarray | None,
    n_classes: int,
    options: GANOptions,
    config: GANConfig | None = None,
    judge: Judge | None = None,
) -> GANResult:
    """Train a generator on `images` (N, C, H, W) float32 in 0..config.pixel_max.

    `labels` (N,) int64 in 0..n_classes-1 give a class-conditional model; None (with n_classes 0) an
    unconditional one. Returns the EMA generator and the per-epoch history (losses, judged quality).
    """
    if labels is None and n_classes:
        raise ValueError("n_classes must be 0 when no labels are given")
    height, width = images.shape[-2:]
    if height != width or height % 4:
        raise ValueError(f"images must be square with a side divisible by 4 (two 2x upsamplings), got {height}x{width}")
    if len(images) < options.batch_size and not options.dry_run:
        raise ValueError(f"{len(images)} images, fewer than one batch of {options.batch_size}")
    generator_rng = seed_everything(options.seed)
    gan = config or GANConfig(n_classes=n_classes, image_size=images.shape[-1], channels=images.shape[1])
    g, d = Generator(gan), Discriminator(gan)
    ema = copy.deepcopy(g).eval()
    opt_g = torch.optim.Adam(g.parameters(), lr=options.lr_g, betas=options.betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=options.lr_d, betas=options.betas)
    x_all = torch.from_numpy(images.astype(np.float32))
    y_all = (
        torch.from_numpy(labels.astype(np.int64)) if labels is not None else torch.zeros(len(images), dtype=torch.long)
    )
    batch = min(options.batch_size, len(images))
    steps = 1 if options.dry_run else len(images) // batch
    epochs = 1 if options.dry_run else options.epochs
    result = GANResult(generator=ema)
    started = time.perf_counter()
    bar = tqdm(range(1, epochs + 1), desc="gan", unit="epoch", disable=not options.progress, dynamic_ncols=True)
    step_count = 0
    for epoch in bar:
        t0 = time.perf_counter()
        order = torch.randperm(len(images), generator=generator_rng)
        totals = np.zeros(4)
        g.train()
        d.train()
        for s in range(steps):
            index = order[s * batch : (s + 1) * batch]
            real, y = x_all[index], y_all[index]
            z = torch.randn(len(index), gan.z_dim, generator=generator_rng)
            fake_y = torch.randint(0, max(1, n_classes), (len(index),), generator=generator_rng)
            fake = g(z, fake_y)
            # discriminator: real -> real_target, fake -> 0
            real_logits = d(real, y)
            fake_logits = d(fake.detach(), fake_y)
            d_loss = F.binary_cross_entropy_with_logits(
                real_logits, torch.full_like(real_logits, options.real_target)
            ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            # generator: non-saturating, fakes -> 1
            g_logits = d(fake, fake_y)
            g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            step_count += 1
            _ema_update(ema, g, min(options.ema_decay, (1 + step_count) / (10 + step_count)))
            totals += [
                d_loss.item(),
                g_loss.item(),
                torch.sigmoid(real_logits).mean().item(),
                torch.sigmoid(fake_logits).mean().item(),
            ]
        means = totals / steps
        judged = judge is not None and (epoch % options.judge_every == 0 or epoch == epochs)
        with torch.no_grad():
            quality = judge(ema) if judge is not None and judged else {}
        record = GANEpoch(epoch, *map(float, means), quality=quality, seconds=time.perf_counter() - t0)
        result.history.append(record)
        bar.set_postfix(
            {"d": f"{record.d_loss:.3f}", "g": f"{record.g_loss:.3f}", **{k: f"{v:.3f}" for k, v in quality.items()}}
        )
    bar.close()
    result.seconds = time.perf_counter() - started
    return result
