"""anomaly-detection on images: the served value range, `--denoise`, and digits-ae as a preset of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from service.schema.config import CARD_FILE, METRICS_FILE, MODEL_FILE, load_config
from training.augment import PixelDropout
from training.cli import main
from training.data.anomalies import ANOMALY_KINDS
from training.data.digits import load_digits_split
from training.family import TrainOptions
from training.fit.options import FitOptions
from training.fit.tasks.anomaly_detection import load_images
from training.models.conv_autoencoder import ConvAEConfig, ConvAutoencoder, ImageAnomalyScorer
from training.presets import digits_ae, fit_options

ZEROS = ["--task", "anomaly-detection", "--normal-label", "0", "--epochs", "2", "--no-progress"]


def fit(repository: Path, name: str, data: Path, *args: str) -> dict[str, Any]:
    assert main(["fit", name, "--data", str(data), "--repository", str(repository), *ZEROS, *args]) == 0
    metrics: dict[str, Any] = json.loads((repository / name / "1" / METRICS_FILE).read_text())
    return metrics


@pytest.fixture(scope="module")
def denoised(fit_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    repository = tmp_path_factory.mktemp("anomaly-repo")
    return {
        "repository": repository,
        "plain": fit(repository, "plain", fit_data["digits"], "--denoise", "0"),
        "denoised": fit(repository, "denoised", fit_data["digits"], "--denoise", "0.5"),
    }


def test_pixel_dropout_fills_lost_pixels_with_the_background() -> None:
    images = torch.full((4, 1, 8, 8), 0.25)
    corrupted = PixelDropout(max_rate=0.9, background=1.0)(images, torch.Generator().manual_seed(0))
    assert set(corrupted.unique().tolist()) == {0.25, 1.0}


def test_conv_autoencoder_scores_in_its_configured_value_range() -> None:
    torch.manual_seed(0)
    scorer = ImageAnomalyScorer(ConvAutoencoder(ConvAEConfig(image_size=8, value_range=(0.0, 16.0)))).eval()
    pixels = torch.rand(5, 1, 8, 8) * 16.0
    with torch.no_grad():
        score, reconstruction = scorer(pixels)
    assert torch.allclose(score, (reconstruction - pixels).pow(2).mean(dim=(1, 2, 3)))
    assert float(reconstruction.min()) >= 0.0 and float(reconstruction.max()) <= 16.0
    assert float(reconstruction.max()) > 1.0


def test_fit_denoise_is_recorded_and_changes_the_model(denoised: dict[str, Any]) -> None:
    plain, noisy = denoised["plain"], denoised["denoised"]
    assert (plain["denoise"], noisy["denoise"]) == (0.0, 0.5)
    assert plain["threshold"] != noisy["threshold"]
    card = (denoised["repository"] / "denoised" / "1" / CARD_FILE).read_text()
    assert "denoising: each training image has a random 0..50% of its pixels set to background" in card
    assert "denoising" not in (denoised["repository"] / "plain" / "1" / CARD_FILE).read_text()


def test_fit_refuses_a_denoise_rate_of_one_or_more(fit_data: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        fit(tmp_path, "bad", fit_data["digits"], "--denoise", "1")
    assert exit_info.value.code == 2
    assert not (tmp_path / "bad").exists()


def test_fit_image_anomaly_detector_serves_decoded_files_in_0_to_1(
    denoised: dict[str, Any], fit_data: dict[str, Path]
) -> None:
    repository = denoised["repository"]
    config = load_config(repository / "plain")
    assert config.image is not None and config.image.value_range == (0.0, 1.0)
    loaded = load_images(FitOptions(name="plain", task="anomaly-detection", data=fit_data["digits"], normal_label="0"))
    pixels = loaded.served_pixels(loaded.split.test[:16])
    assert pixels.max() <= 1.0 and pixels.max() > 0.5
    session = ort.InferenceSession(str(repository / "plain" / "1" / MODEL_FILE), providers=["CPUExecutionProvider"])
    score, reconstruction = session.run(None, {"pixels": pixels})
    assert np.allclose(score, ((reconstruction - pixels) ** 2).mean(axis=(1, 2, 3)), rtol=1e-4)
    assert reconstruction.min() >= 0.0 and reconstruction.max() <= 1.0


def test_digits_ae_preset_keeps_the_fixed_digits_split_and_holds_out_the_anomalies() -> None:
    loaded = digits_ae.load(fit_options(digits_ae.PRESET, TrainOptions(repository=Path("models"))))
    digits = load_digits_split()
    assert loaded.flags is not None and loaded.images.labels is not None
    assert (len(loaded.split.train), len(loaded.split.val)) == (len(digits.train), len(digits.val))
    assert all(loaded.flags[i] == "normal" for i in [*loaded.split.train, *loaded.split.val])
    assert np.array_equal(loaded.images.pixels[loaded.split.train], digits.train.x)
    test_labels = [loaded.images.labels[i] for i in loaded.split.test]
    assert {kind: test_labels.count(kind) for kind in ANOMALY_KINDS} == dict.fromkeys(
        ANOMALY_KINDS, digits_ae.ANOMALIES_PER_KIND
    )
    assert loaded.served.value_range == (0.0, 16.0)


def test_train_digits_ae_runs_the_fit_task(dry_run_repository: Path) -> None:
    version_dir = dry_run_repository / "digits-ae" / "1"
    metrics = json.loads((version_dir / METRICS_FILE).read_text())
    assert metrics["task"] == "anomaly-detection"
    assert metrics["test"]["baseline"]["name"] == "isolation forest (same inputs)"
    assert metrics["test"]["n"] == metrics["test"]["n_normal"] + metrics["test"]["n_anomalies"]
    assert set(metrics["test"]["detected"]) == set(ANOMALY_KINDS)
    assert metrics["denoise"] == digits_ae.PRESET.settings["denoise"]
    assert "nnserve-train train digits-ae" in (version_dir / CARD_FILE).read_text()
