"""curves.png: training and validation loss (and accuracy, where it exists) per epoch."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from training.loop import FitResult


def plot_curves(result: FitResult, path: Path, title: str) -> Path:
    """Written with matplotlib's object API (no pyplot), so no GUI backend or global state is touched."""
    history = result.history
    epochs = [r.epoch for r in history]
    with_accuracy = all(r.val_accuracy is not None for r in history)
    fig = Figure(figsize=(10 if with_accuracy else 5.5, 4), layout="constrained")
    axes = fig.subplots(1, 2 if with_accuracy else 1, squeeze=False)[0]
    loss_ax = axes[0]
    loss_ax.plot(epochs, [r.train_loss for r in history], marker=".", label="train")
    loss_ax.plot(epochs, [r.val_loss for r in history], marker=".", label="validation")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    if with_accuracy:
        acc_ax = axes[1]
        acc_ax.plot(epochs, [r.train_accuracy for r in history], marker=".", label="train")
        acc_ax.plot(epochs, [r.val_accuracy for r in history], marker=".", label="validation")
        acc_ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in axes:
        ax.axvline(result.best_epoch, color="grey", linestyle="--", linewidth=1, label="best (restored)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.savefig(path, dpi=80)
    return path
