"""card.md: what a model is, what it was trained on, how well it does on held-out data, how to rebuild it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.schema.config import ModelConfig


@dataclass(frozen=True)
class CardText:
    """The family-specific prose of a card; the rest is generated from what training recorded."""

    data: str
    architecture: str
    evaluation: str
    """What the test set is and how the metric is computed."""
    craft: list[str] = field(default_factory=list)
    """Family-specific training details (loss, augmentation, calibration), one bullet each."""


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            yield from flatten_metrics(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def metric_cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def tensor_lines(config: ModelConfig) -> Iterator[str]:
    for kind, specs in (("input", config.inputs), ("output", config.outputs)):
        for t in specs:
            yield f"- {kind} `{t.name}`: {t.datatype} {t.shape}"


def render_card(
    *,
    config: ModelConfig,
    version: int,
    text: CardText,
    hyperparameters: Mapping[str, Any],
    training: Mapping[str, Any],
    fit_config: Mapping[str, Any],
    parameters: int,
    test_metrics: Mapping[str, Any],
    parity: Mapping[int, float],
    retrain: str,
    dry_run: bool,
) -> str:
    name = config.name or "model"
    lines = [f"# {name}, version {version}", "", config.description, ""]
    if dry_run:
        lines += [
            "> **Dry run**: trained on one batch to exercise the pipeline; the figures below mean nothing.",
            "",
        ]
    lines += ["## Data", "", text.data, "", "## Architecture", "", text.architecture, ""]
    lines += [f"Parameters: {parameters:,}.", "", "Hyperparameters:", ""]
    lines += [f"- `{k}`: {v}" for k, v in hyperparameters.items()]
    lines += ["", "Tensors (batch axis first, -1 = any size):", "", *tensor_lines(config), ""]
    lines += ["## Training", ""]
    lines += [
        f"- mini-batch AdamW, batch {fit_config['batch_size']}, peak learning rate {fit_config['lr']}, "
        f"decoupled weight decay (L2) {fit_config['weight_decay']} on weight matrices and kernels",
        f"- learning-rate schedule: linear warmup over {fit_config['warmup_fraction']:.0%} of the steps, "
        "then cosine decay to 10% of the peak",
        f"- early stopping on validation loss (patience {fit_config['patience']} epochs, at most "
        f"{fit_config['epochs']}), restoring the best checkpoint: epoch {training['best_epoch']} of "
        f"{training['epochs_run']} run, validation loss {training['best_val_loss']:.4f}",
        f"- gradient norm clipped at {fit_config['grad_clip']}",
        *(f"- {line}" for line in text.craft),
        f"- training took {training['seconds']:.1f} s on CPU; curves in `curves.png`",
        "",
    ]
    lines += [
        "## Test metrics",
        "",
        text.evaluation,
        "",
        "Computed by ONNX Runtime on the exported `model.onnx`.",
        "",
    ]
    lines += ["| metric | value |", "| --- | --- |"]
    lines += [f"| {k} | {metric_cell(v)} |" for k, v in flatten_metrics(test_metrics) if k not in ("model", "version")]
    worst = max(parity.values())
    lines += ["", "## Export", ""]
    lines += [
        "ONNX, one self-contained file with a dynamic batch axis; `onnx.checker` passed. Torch vs ONNX "
        f"Runtime on fresh random inputs at batch sizes {', '.join(map(str, parity))}: max abs difference "
        f"{worst:.2e} (limit 1e-4).",
        "",
        "## How to retrain",
        "",
        "```bash",
        retrain,
        "```",
        "",
    ]
    return "\n".join(lines)
