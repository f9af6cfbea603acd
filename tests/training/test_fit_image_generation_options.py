"""The image-generation options of `fit`: --judge (a repository classifier judges the generator, checked
against the data first), --output-max (the served value range) and --png-scale (the served PNG size)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from service.schema.config import CONFIG_FILE, METRICS_FILE, MODEL_FILE, dump_config, load_config
from training.cli import main
from training.fit import sample_data

QUICK = ["--no-progress", "--seed", "0", "--dry-run"]


def fit(repository: Path, name: str, task: str, data: Path, *args: str) -> int:
    command = ["fit", name, "--task", task, "--data", str(data), "--repository", str(repository)]
    return main([*command, *QUICK, *args])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_data.write_digit_folders(tmp_path_factory.mktemp("gen-options") / "digits", size=8, classes=(0, 1, 7))


@pytest.fixture(scope="module")
def judged(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier fitted on the folder, then a generator judged by it, served in 0..16 at PNG scale 3."""
    repository = tmp_path_factory.mktemp("gen-options-repo")
    assert fit(repository, "classifier", "image-classification", folder) == 0
    options = ["--judge", "classifier", "--output-max", "16", "--png-scale", "3"]
    assert fit(repository, "gen", "image-generation", folder, *options) == 0
    return repository


def metrics_of(repository: Path, name: str) -> dict[str, Any]:
    metrics: dict[str, Any] = json.loads((repository / name / "1" / METRICS_FILE).read_text())
    return metrics


def test_fit_image_generation_with_judge_is_judged_by_the_repository_classifier(judged: Path) -> None:
    judge = metrics_of(judged, "gen")["test"]["judge"]
    assert judge["model"] == "classifier v1"
    assert 0.0 <= judge["accuracy"] <= 1.0
    assert sorted(p.name for p in judged.iterdir()) == ["classifier", "gen"]


def test_fit_image_generation_output_max_sets_the_generated_and_served_range(judged: Path) -> None:
    settings = load_config(judged / "gen").image_generation
    assert settings is not None and settings.value_range == (0.0, 16.0)
    assert metrics_of(judged, "gen")["hyperparameters"]["pixel_max"] == 16.0
    session = ort.InferenceSession(str(judged / "gen" / "1" / MODEL_FILE), providers=["CPUExecutionProvider"])
    z = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)
    (images,) = session.run(None, {"z": z, "label": np.arange(64, dtype=np.int64) % 3})
    assert images.min() >= 0.0 and images.max() <= 16.0
    assert images.max() > 1.0  # the default range would stop at 1


def test_fit_image_generation_png_scale_sets_the_served_scale(judged: Path) -> None:
    settings = load_config(judged / "gen").image_generation
    assert settings is not None and settings.scale == 3  # the default for 8x8 images is 16


def test_fit_image_generation_refuses_a_judge_of_other_classes_before_training(
    judged: Path, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(judged / "classifier", judged / "other-classes")
    config = load_config(judged / "classifier")
    assert config.classification is not None
    relabelled = config.model_copy(
        update={
            "name": "other-classes",
            "classification": config.classification.model_copy(update={"labels": ["0", "1", "9"]}),
        }
    )
    (judged / "other-classes" / CONFIG_FILE).write_text(dump_config(relabelled), encoding="utf-8")
    assert fit(judged, "refused", "image-generation", folder, "--judge", "other-classes") == 2
    assert "--judge other-classes: its classes ['0', '1', '9'] are not the data's ['0', '1', '7']" in (
        capsys.readouterr().err
    )
    assert not (judged / "refused").exists()


def test_fit_image_generation_refuses_a_judge_that_is_not_an_image_classifier(
    judged: Path, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fit(judged, "refused", "image-generation", folder, "--judge", "gen") == 2
    assert "--judge gen: task 'image-generation', not an image classifier" in capsys.readouterr().err
    assert fit(judged, "refused", "image-generation", folder, "--judge", "absent") == 2
    assert "--judge absent: no versions of 'absent'" in capsys.readouterr().err
    assert not (judged / "refused").exists()


def test_fit_image_generation_refuses_a_judge_of_another_image_size(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fit(tmp_path, "classifier", "image-classification", folder, "--image-size", "12") == 0
    assert fit(tmp_path, "refused", "image-generation", folder, "--judge", "classifier") == 2
    assert "it takes (height, width, channels, ink, value range) (12, 12," in capsys.readouterr().err


def test_fit_image_generation_refuses_a_png_scale_above_the_limit(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fit(tmp_path, "refused", "image-generation", folder, "--png-scale", "33") == 2
    assert "--png-scale must be 1..32, got 33" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan"])
def test_fit_refuses_an_output_max_that_is_not_a_positive_number(folder: Path, tmp_path: Path, value: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        fit(tmp_path, "refused", "image-generation", folder, "--output-max", value)
    assert exit_info.value.code == 2
