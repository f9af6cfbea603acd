"""`train_gan` (reused by `fit`) and the digits-gan family end to end in dry-run mode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from gan_testkit import COMMITTED

from service.schema.config import CARD_FILE, CURVES_FILE, METRICS_FILE, MODEL_FILE, load_config
from training.adversarial import GANOptions, train_gan
from training.cli import main
from training.export import PARITY_TOLERANCE
from training.gan_quality import frechet_distance, mean_pairwise_distance

IMAGES = np.random.default_rng(0).uniform(0, 16, (96, 1, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("conditional", [True, False])
def test_train_gan_returns_an_eval_generator_and_its_history(conditional: bool) -> None:
    labels = np.arange(96, dtype=np.int64) % 3 if conditional else None
    options = GANOptions(epochs=2, batch_size=32, judge_every=1, progress=False)
    result = train_gan(IMAGES, labels, 3 if conditional else 0, options, judge=lambda g: {"calls": 1.0})
    assert [r.epoch for r in result.history] == [1, 2]
    assert all(r.quality == {"calls": 1.0} for r in result.history)
    assert not result.generator.training
    with torch.no_grad():
        images = result.generator(torch.zeros(5, 32), torch.zeros(5, dtype=torch.long))
    assert images.shape == (5, 1, 8, 8) and float(images.min()) >= 0.0 and float(images.max()) <= 16.0


def test_train_gan_refuses_labels_count_mismatch() -> None:
    with pytest.raises(ValueError, match="n_classes"):
        train_gan(IMAGES, None, 3, GANOptions(epochs=1, progress=False))


def test_train_gan_refuses_a_side_not_divisible_by_four() -> None:
    with pytest.raises(ValueError, match="divisible by 4"):
        train_gan(IMAGES[:, :, :6, :6], None, 0, GANOptions(epochs=1, progress=False))


def test_frechet_distance_is_zero_for_identical_samples_and_grows_with_shift() -> None:
    a = np.random.default_rng(1).standard_normal((500, 4))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a + 1.0) == pytest.approx(4.0, rel=1e-3)


def test_mean_pairwise_distance_is_zero_for_a_collapsed_class() -> None:
    same = np.ones((10, 1, 8, 8), dtype=np.float32)
    assert mean_pairwise_distance(same, np.zeros(10, dtype=np.int64), 16.0) == 0.0


def test_train_digits_gan_dry_run_writes_a_complete_version(tmp_path: Path) -> None:
    shutil.copytree(COMMITTED / "digits-cnn", tmp_path / "digits-cnn")
    assert main(["train", "digits-gan", "--dry-run", "--no-progress", "--repository", str(tmp_path)]) == 0
    version_dir = tmp_path / "digits-gan" / "1"
    assert {p.name for p in version_dir.iterdir()} == {MODEL_FILE, CARD_FILE, METRICS_FILE, CURVES_FILE}
    metrics = json.loads((version_dir / METRICS_FILE).read_text())
    assert metrics["dry_run"] is True
    assert max(metrics["parity_max_abs_diff"].values()) <= PARITY_TOLERANCE
    assert load_config(tmp_path / "digits-gan").task == "image-generation"
    assert "Dry run" in (version_dir / CARD_FILE).read_text()


def test_train_digits_gan_without_its_judge_names_the_missing_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="digits-cnn"):
        main(["train", "digits-gan", "--dry-run", "--no-progress", "--repository", str(tmp_path)])
