"""image-classification's own options and rules: `--augment`, graphs that take any value range, and the
digits-cnn preset running the task's code on the bundled digits with the committed split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from service.schema.config import CARD_FILE, METRICS_FILE
from training.augment import AffineJitter
from training.cli import main
from training.data.digits import load_digits_split
from training.family import TrainOptions
from training.fit.tasks.image_classification import channel_stats
from training.models.scaled_cnn import ScaledCNN, ScaledCNNConfig
from training.presets import fit_options
from training.presets.digits_cnn import PRESET


def fit_digits(repository: Path, data: Path, *args: str) -> dict[str, Any]:
    command = ["fit", "d", "--task", "image-classification", "--data", str(data), "--repository", str(repository)]
    assert main([*command, "--no-progress", "--epochs", "1", "--layers", "1", "--width", "8", *args]) == 0
    metrics: dict[str, Any] = json.loads((repository / "d" / "1" / METRICS_FILE).read_text())
    return metrics


def test_fit_augment_affine_trains_on_jittered_batches_and_none_on_the_images(
    fit_data: dict[str, Path], tmp_path: Path
) -> None:
    """Same seed, same data: only the training batches differ, so the first epoch's training loss does."""
    plain = fit_digits(tmp_path / "plain", fit_data["digits"], "--augment", "none")
    jittered = fit_digits(tmp_path / "jittered", fit_data["digits"], "--augment", "affine")
    assert (plain["hyperparameters"]["augment"], jittered["hyperparameters"]["augment"]) == ("none", "affine")
    first = [m["training"]["history"][0]["train_loss"] for m in (plain, jittered)]
    assert first[0] != pytest.approx(first[1], rel=1e-3)
    assert "rotations up to 12 degrees" in (tmp_path / "jittered" / "d" / "1" / CARD_FILE).read_text()
    assert "augmentation: none" in (tmp_path / "plain" / "d" / "1" / CARD_FILE).read_text()


def test_fit_augment_rejects_an_unknown_kind(fit_data: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        fit_digits(tmp_path, fit_data["digits"], "--augment", "flip")


def test_affine_jitter_keeps_a_bright_background_bright() -> None:
    """Dark ink on white: uncovered pixels take the background level, so no black border appears."""
    white = torch.full((16, 1, 12, 12), 255.0)
    jittered = AffineJitter(max_shift=0.25)(white, torch.Generator().manual_seed(0))
    assert torch.allclose(jittered, white)


def test_affine_jitter_fills_a_zoomed_out_frame_with_background_not_the_strokes_at_its_edge() -> None:
    """A stroke touching the frame (as digits do) must not be smeared into the margin a zoom-out opens:
    repeating edge pixels did that, and the model then failed on digits drawn smaller than the frame."""
    image = torch.zeros(32, 1, 16, 16)
    image[:, :, :, 7:9] = 16.0  # a vertical stroke from the top edge to the bottom edge
    zoomed = AffineJitter(max_shift=0.0, max_degrees=0.0, max_scale=0.3)(image, torch.Generator().manual_seed(2))
    zoomed_out = zoomed[:, 0, 0, :].sum(dim=1) == 0  # top row empty: this image was shrunk
    assert zoomed_out.any()
    assert zoomed[zoomed_out][:, 0, 0, :].abs().max() == 0.0  # the margin is background, not ink


def test_affine_jitter_moves_ink_by_at_most_its_share_of_the_side() -> None:
    image = torch.zeros(64, 1, 32, 32)
    image[:, :, 14:18, 14:18] = 255.0
    moved = AffineJitter(max_shift=0.125, max_degrees=0.0, max_scale=0.0)(image, torch.Generator().manual_seed(1))
    columns = torch.arange(32.0)
    centre = (moved.sum(dim=2)[:, 0] * columns).sum(dim=1) / moved.sum(dim=(1, 2, 3))  # (64,) ink column centre
    offset = (centre - 15.5).abs()
    assert offset.max() <= 4.0 + 1e-3 and offset.max() > 1.0


def test_scaled_cnn_answers_alike_for_the_same_image_in_either_value_range() -> None:
    """A 0..16 graph fed 0..16 values equals a 0..255 graph with the same weights fed the same image x 255/16."""
    pixels16 = torch.from_numpy(load_digits_split().test.x[:8])
    mean, std = channel_stats(pixels16.numpy(), (0.0, 16.0))
    mean255, std255 = channel_stats(pixels16.numpy() * (255.0 / 16.0), (0.0, 255.0))
    assert [*mean, *std] == pytest.approx([*mean255, *std255])
    torch.manual_seed(0)
    digits = ScaledCNN(ScaledCNNConfig(image_size=8, n_classes=10, value_range=(0.0, 16.0), mean=mean, std=std))
    users = ScaledCNN(ScaledCNNConfig(image_size=8, n_classes=10, mean=mean255, std=std255))
    users.load_state_dict(digits.state_dict())
    digits.eval(), users.eval()
    with torch.no_grad():
        assert torch.allclose(digits(pixels16), users(pixels16 * (255.0 / 16.0)), atol=1e-5)


def test_digits_cnn_preset_holds_out_the_committed_test_split() -> None:
    loaded = PRESET.load(fit_options(PRESET, TrainOptions(repository=Path("unused"))))
    committed = load_digits_split().test
    assert np.array_equal(loaded.images.pixels[loaded.split.test].astype(np.float32), committed.x)
    assert np.array_equal(loaded.y[loaded.split.test], committed.y)
    assert loaded.images.settings.value_range == (0.0, 16.0)


def test_train_digits_cnn_runs_the_fit_task(tmp_path: Path) -> None:
    assert main(["train", "digits-cnn", "--dry-run", "--no-progress", "--repository", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "digits-cnn" / "1" / METRICS_FILE).read_text())
    assert metrics["task"] == "image-classification"
    assert metrics["test"]["baseline"]["name"] == "logistic regression on pixels"
    assert metrics["hyperparameters"]["augment"] == "affine" and metrics["hyperparameters"]["blocks"] == 2
    assert "nnserve-train train digits-cnn" in (tmp_path / "digits-cnn" / "1" / CARD_FILE).read_text()
