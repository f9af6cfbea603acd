"""`train_gan` (reused by `fit`) and the digits-gan preset end to end in dry-run mode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from gan_testkit import COMMITTED
from PIL import Image

from service.schema.config import CARD_FILE, CURVES_FILE, METRICS_FILE, MODEL_FILE, load_config
from training.adversarial import GANOptions, train_gan
from training.cli import main
from training.export import PARITY_TOLERANCE
from training.fit.errors import DataError
from training.gan_quality import frechet_distance, mean_pairwise_distance
from training.gan_report import write_grid

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


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`train digits-gan --dry-run` in a repository holding the committed digits-cnn, its judge."""
    repository = tmp_path_factory.mktemp("gan-dry-run")
    shutil.copytree(COMMITTED / "digits-cnn", repository / "digits-cnn")
    assert main(["train", "digits-gan", "--dry-run", "--no-progress", "--repository", str(repository)]) == 0
    return repository


def test_train_digits_gan_dry_run_writes_a_complete_version(dry_run: Path) -> None:
    version_dir = dry_run / "digits-gan" / "1"
    assert {p.name for p in version_dir.iterdir()} == {MODEL_FILE, CARD_FILE, METRICS_FILE, CURVES_FILE}
    metrics = json.loads((version_dir / METRICS_FILE).read_text())
    assert metrics["dry_run"] is True
    assert max(metrics["parity_max_abs_diff"].values()) <= PARITY_TOLERANCE
    assert load_config(dry_run / "digits-gan").task == "image-generation"
    assert "Dry run" in (version_dir / CARD_FILE).read_text()


def test_train_digits_gan_runs_the_fit_image_generation_path_judged_by_digits_cnn(dry_run: Path) -> None:
    metrics = json.loads((dry_run / "digits-gan" / "1" / METRICS_FILE).read_text())
    assert metrics["task"] == "image-generation"
    assert metrics["data"]["split"] == "given by the split column 'split'"
    assert (metrics["data"]["train"], metrics["data"]["test"]) == (1167, 360)  # the fixed split of the digits
    assert set(metrics["test"]["baseline"]) == {"name", "class_means", "real_train"}
    assert metrics["test"]["judge"]["model"] == "digits-cnn v1"
    assert "nnserve-train train digits-gan" in (dry_run / "digits-gan" / "1" / CARD_FILE).read_text()


def test_train_digits_gan_keeps_the_committed_served_contract(dry_run: Path) -> None:
    trained, committed = load_config(dry_run / "digits-gan"), load_config(COMMITTED / "digits-gan")
    assert trained.inputs == committed.inputs and trained.outputs == committed.outputs
    assert trained.image_generation == committed.image_generation  # labels, value range 0..16, PNG scale 8
    assert trained.batching.max_batch_size == committed.batching.max_batch_size


def test_train_digits_gan_without_its_judge_names_the_missing_model(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--judge digits-cnn: no versions of 'digits-cnn'"):
        main(["train", "digits-gan", "--dry-run", "--no-progress", "--repository", str(tmp_path)])
    assert not (tmp_path / "digits-gan").exists()


def test_write_grid_draws_one_row_of_served_images_per_class(tmp_path: Path) -> None:
    path = write_grid(COMMITTED / "digits-gan", tmp_path / "grid.png", seed=0, per_class=5)
    with Image.open(path) as picture:
        assert picture.size == ((5 * 9 - 1) * 4, (10 * 9 - 1) * 4)  # 8x8 tiles, 1-pixel gaps, 4x
        assert picture.getextrema()[1] > 200  # bright ink drawn, not a blank canvas
