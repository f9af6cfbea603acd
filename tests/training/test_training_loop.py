"""The shared training loop: schedule, weight decay groups, early stopping, checkpoint restore."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from training.loop import FitConfig, StepOutput, fit, make_optimizer, warmup_cosine


class Scalar(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))


def make_step(seen: list[float]) -> Any:
    """Training pulls w towards 5; validation is best at w = 1, passed on the way."""

    def step(model: nn.Module, batch: int) -> StepOutput:
        w = model.w  # type: ignore[union-attr]
        if model.training:
            return StepOutput((w - 5.0) ** 2, 1)
        seen.append(float(w))
        return StepOutput((w - 1.0) ** 2, 1)

    return step


CONFIG = FitConfig(epochs=50, lr=0.3, weight_decay=0.0, warmup_fraction=0.0, patience=3, grad_clip=100.0)


def test_fit_restores_the_best_validation_checkpoint() -> None:
    model, seen = Scalar(), []
    result = fit(model, make_step(seen), [0], [0], CONFIG, desc="t", progress=False)
    assert result.best_epoch < len(result.history)
    assert float(model.w.detach()) == pytest.approx(seen[result.best_epoch - 1])
    assert abs(float(model.w.detach()) - 1.0) < abs(seen[-1] - 1.0)
    assert not model.training


def test_fit_stops_after_patience_epochs_without_a_new_best() -> None:
    result = fit(Scalar(), make_step([]), [0], [0], CONFIG, desc="t", progress=False)
    assert result.stopped_early
    assert len(result.history) == result.best_epoch + CONFIG.patience


def test_fit_dry_run_takes_a_single_training_batch() -> None:
    calls: list[int] = []

    def step(model: nn.Module, batch: int) -> StepOutput:
        calls.append(batch)
        return StepOutput((model.w - 1.0) ** 2, 1)  # type: ignore[operator]

    result = fit(Scalar(), step, [1, 2, 3], [4, 5], CONFIG, desc="t", dry_run=True, progress=False)
    assert calls == [1, 4]
    assert len(result.history) == 1


def test_schedule_warms_up_then_decays_to_the_floor() -> None:
    factor = warmup_cosine(total_steps=100, warmup_fraction=0.1, floor=0.1)
    assert factor(0) == pytest.approx(0.1)
    assert factor(9) == pytest.approx(1.0)
    assert factor(50) < factor(20) < 1.0
    assert factor(99) == pytest.approx(0.1, abs=1e-3)


def test_optimizer_decays_weight_matrices_but_not_biases_or_norms() -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3))
    groups = make_optimizer(model, FitConfig(weight_decay=0.5)).param_groups
    decayed = {id(p) for g in groups if g["weight_decay"] == 0.5 for p in g["params"]}
    assert decayed == {id(model[0].weight)}
