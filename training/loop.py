"""The one training loop every family uses: AdamW, warmup + cosine LR, early stopping, progress bars.

Each family supplies a `step` that turns a batch into a loss (and, for classifiers, a count of correct
answers); everything else (optimiser, schedule, stopping, best-checkpoint restore, history) is here.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm


@dataclass(frozen=True)
class FitConfig:
    epochs: int = 40
    """Upper bound; early stopping usually ends sooner."""
    batch_size: int = 64
    lr: float = 3e-3
    """Peak learning rate, reached after warmup."""
    weight_decay: float = 1e-4
    """AdamW's decoupled L2 penalty, applied to weight matrices and kernels only (not biases or norms)."""
    warmup_fraction: float = 0.05
    """Share of all steps spent ramping the LR up linearly; the rest follows a cosine down to 10%."""
    patience: int = 6
    """Epochs without a new best validation loss before stopping."""
    grad_clip: float = 1.0
    """Max global gradient norm (keeps the LSTM's occasional large steps in check)."""


@dataclass(frozen=True)
class StepOutput:
    loss: torch.Tensor
    """Mean loss over the batch (the graph is kept for backward)."""
    n: int
    correct: float | None = None
    """Number of correct answers in the batch, for classifiers; None where accuracy means nothing."""


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    train_accuracy: float | None
    val_accuracy: float | None
    lr: float
    seconds: float


@dataclass
class FitResult:
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.inf
    stopped_early: bool = False
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "epochs_run": len(self.history),
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss,
            "stopped_early": self.stopped_early,
            "seconds": round(self.seconds, 2),
            "history": [asdict(r) for r in self.history],
        }


Step = Callable[[nn.Module, Any], StepOutput]


class Batches(Protocol):
    """What a DataLoader is to the loop: re-iterable, with a known number of batches."""

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


def make_optimizer(model: nn.Module, config: FitConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on >=2-D tensors only: decaying biases and norm gains only hurts."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr)


def warmup_cosine(total_steps: int, warmup_fraction: float, floor: float = 0.1) -> Callable[[int], float]:
    """LR multiplier per step: linear warmup, then cosine decay to `floor` of the peak."""
    warmup = max(1, int(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def _run_epoch(
    model: nn.Module,
    step: Step,
    batches: Iterable[Any],
    optimizer: torch.optim.Optimizer | None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    config: FitConfig,
    max_batches: int | None,
    bar: tqdm[Any] | None,
) -> tuple[float, float | None]:
    """Mean loss and accuracy over one pass; trains when an optimizer is given, else evaluates."""
    training = optimizer is not None
    model.train(training)
    total_loss, total_n, total_correct, has_accuracy = 0.0, 0, 0.0, True
    with torch.set_grad_enabled(training):
        for i, batch in enumerate(batches):
            if max_batches is not None and i >= max_batches:
                break
            out = step(model, batch)
            if optimizer is not None and scheduler is not None:
                optimizer.zero_grad(set_to_none=True)
                out.loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                scheduler.step()
            total_loss += out.loss.item() * out.n
            total_n += out.n
            if out.correct is None:
                has_accuracy = False
            else:
                total_correct += out.correct
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{total_loss / total_n:.4f}")
    if total_n == 0:
        raise ValueError("an epoch saw no batches; is the dataset empty?")
    return total_loss / total_n, (total_correct / total_n if has_accuracy else None)


def fit(
    model: nn.Module,
    step: Step,
    train_batches: Batches,
    val_batches: Batches,
    config: FitConfig,
    *,
    desc: str,
    dry_run: bool = False,
    progress: bool = True,
) -> FitResult:
    """Train `model` in place and leave it holding the weights of its best validation epoch.

    `train_batches` and `val_batches` are re-iterated every epoch (a DataLoader reshuffles itself).
    A dry run does one epoch of one training batch and one validation batch: the whole path, no cost.
    """
    max_batches = 1 if dry_run else None
    epochs = 1 if dry_run else config.epochs
    steps_per_epoch = 1 if dry_run else len(train_batches)
    optimizer = make_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(epochs * steps_per_epoch, config.warmup_fraction)
    )
    result = FitResult()
    best_state = copy.deepcopy(model.state_dict())
    started = time.perf_counter()
    epoch_bar = tqdm(range(1, epochs + 1), desc=desc, unit="epoch", disable=not progress, dynamic_ncols=True)
    for epoch in epoch_bar:
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        with tqdm(
            total=steps_per_epoch,
            desc=f"epoch {epoch}",
            unit="batch",
            leave=False,
            disable=not progress,
            dynamic_ncols=True,
        ) as bar:
            train_loss, train_acc = _run_epoch(
                model, step, train_batches, optimizer, scheduler, config, max_batches, bar
            )
        val_loss, val_acc = _run_epoch(model, step, val_batches, None, None, config, max_batches, None)
        result.history.append(
            EpochRecord(epoch, train_loss, val_loss, train_acc, val_acc, lr, time.perf_counter() - t0)
        )
        if val_loss < result.best_val_loss:
            result.best_val_loss, result.best_epoch = val_loss, epoch
            best_state = copy.deepcopy(model.state_dict())
        postfix = {
            "train_loss": f"{train_loss:.4f}",
            "val_loss": f"{val_loss:.4f}",
            "best": result.best_epoch,
        }
        if val_acc is not None:
            postfix["val_acc"] = f"{val_acc:.4f}"
        epoch_bar.set_postfix(postfix)
        if epoch - result.best_epoch >= config.patience:
            result.stopped_early = True
            break
    epoch_bar.close()
    model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - started
    return result


TORCH_THREADS = 1
"""These models are too small to gain from intra-op threads, and on a busy 2-core machine the extra
threads spin-wait on each other: measured 10-30x slower per epoch with 2 threads than with 1."""


def seed_everything(seed: int) -> torch.Generator:
    """Pin torch to TORCH_THREADS, seed its global RNG (init, dropout); return a generator for shuffles."""
    torch.set_num_threads(TORCH_THREADS)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
