"""curves.png and card.md for an adversarially trained generator (no validation loss, two players)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from service.schema.config import ModelConfig, load_config
from service.tasks.latents import draw_latents
from training.adversarial import GANResult
from training.card import CardText, flatten_metrics, metric_cell, tensor_lines
from training.evaluate import open_session
from training.repository import resolve_version


def plot_gan_curves(result: GANResult, path: Path, title: str) -> Path:
    """Left: both players' losses per epoch. Right: the judged quality figures on the EMA generator."""
    history = result.history
    epochs = [r.epoch for r in history]
    fig = Figure(figsize=(10, 4), layout="constrained")
    loss_ax, quality_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [r.d_loss for r in history], label="discriminator")
    loss_ax.plot(epochs, [r.g_loss for r in history], label="generator")
    loss_ax.set(xlabel="epoch", ylabel="loss (BCE)", title="adversarial losses")
    judged = [r for r in history if r.quality]
    x = [r.epoch for r in judged]
    shares = {"conditional_accuracy": "conditional accuracy", "diversity_ratio": "diversity / real"}
    present = set(judged[0].quality) if judged else set()
    for key, label in shares.items():
        if key in present:  # an unconditional generator has no conditional accuracy
            quality_ax.plot(x, [r.quality[key] for r in judged], marker=".", label=label)
    quality_ax.set(xlabel="epoch", ylabel="share", title="quality (EMA generator, validation)", ylim=(0, 1.05))
    fd_ax = quality_ax.twinx()
    if "frechet_distance" in present:
        fd_ax.plot(
            x, [r.quality["frechet_distance"] for r in judged], color="tab:red", marker=".", label="Fréchet distance"
        )
    fd_ax.set(ylabel="Fréchet distance")
    for ax in (loss_ax, quality_ax):
        ax.grid(alpha=0.3)
    loss_ax.legend()
    handles = quality_ax.get_legend_handles_labels()
    extra = fd_ax.get_legend_handles_labels()
    quality_ax.legend(handles[0] + extra[0], handles[1] + extra[1], loc="lower right")
    fig.suptitle(title)
    fig.savefig(path, dpi=80)
    return path


def save_grid(images: np.ndarray, path: Path, top: float, scale: int = 4) -> Path:
    """Images (rows, cols, H, W) in 0..top as one PNG grid, 1-pixel gaps, each pixel `scale` wide."""
    from PIL import Image

    rows, cols, h, w = images.shape
    gap = 1
    canvas = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), 40, dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            tile = np.clip(images[r, c] / top * 255.0, 0, 255).astype(np.uint8)
            canvas[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tile
    picture = Image.fromarray(canvas).resize(
        (canvas.shape[1] * scale, canvas.shape[0] * scale), Image.Resampling.NEAREST
    )
    picture.save(path, optimize=True)
    return path


def write_grid(model_dir: Path, path: Path, seed: int = 0, per_class: int = 12) -> Path:
    """A PNG grid of a conditional generator's latest version (the README's, docs/img/): row c holds the
    images that `:predict` serves for `{"label": c, "seed": seed, "count": per_class}`."""
    settings = load_config(model_dir).image_generation
    if settings is None or settings.label is None:
        raise ValueError(f"{model_dir}: not a class-conditional image generator")
    _, version_dir = resolve_version(model_dir.parent, model_dir.name, None)
    session = open_session(version_dir)
    z = draw_latents(seed, per_class, settings.z_dim)
    rows = [
        session.run(None, {settings.z: z, settings.label: np.full(per_class, c, dtype=np.int64)})[0]
        for c in range(len(settings.labels))
    ]
    return save_grid(np.stack(rows)[:, :, 0], path, settings.value_range[1])


def render_gan_card(
    *,
    config: ModelConfig,
    version: int,
    text: CardText,
    hyperparameters: Mapping[str, Any],
    result: GANResult,
    parameters: int,
    test_metrics: Mapping[str, Any],
    parity: Mapping[int, float],
    retrain: str,
    dry_run: bool,
) -> str:
    lines = [f"# {config.name}, version {version}", "", config.description, ""]
    if dry_run:
        lines += ["> **Dry run**: trained on one batch to exercise the pipeline; the figures below mean nothing.", ""]
    lines += ["## Data", "", text.data, "", "## Architecture", "", text.architecture, ""]
    lines += [f"Parameters (generator, exported): {parameters:,}.", "", "Hyperparameters:", ""]
    lines += [f"- `{k}`: {v}" for k, v in hyperparameters.items()]
    lines += ["", "Tensors (batch axis first, -1 = any size):", "", *tensor_lines(config), ""]
    lines += ["## Training", ""]
    lines += [f"- {line}" for line in text.craft]
    lines += [f"- training took {result.seconds:.1f} s on CPU (one thread); curves in `curves.png`", ""]
    lines += ["## Test metrics", "", text.evaluation, "", "Computed by ONNX Runtime on the exported `model.onnx`.", ""]
    lines += ["| metric | value |", "| --- | --- |"]
    lines += [f"| {k} | {metric_cell(v)} |" for k, v in flatten_metrics(test_metrics) if k not in ("model", "version")]
    worst = max(parity.values())
    lines += ["", "## Export", ""]
    lines += [
        "ONNX, the generator only, one self-contained file with a dynamic batch axis; `onnx.checker` passed. "
        f"Torch vs ONNX Runtime on fresh random inputs at batch sizes {', '.join(map(str, parity))}: max abs "
        f"difference {worst:.2e} (limit 1e-4).",
        "",
        "## How to retrain",
        "",
        "```bash",
        retrain,
        "```",
        "",
    ]
    return "\n".join(lines)
