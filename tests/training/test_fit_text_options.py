"""text-classification's own options: `--positive-label` (metrics, config and card of a binary task),
its refusals, and the text-lstm/text-transformer presets running the task's code on the bundled SMS data
with the committed split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from training_testkit import TEXT_FAMILIES

from service.schema.config import CARD_FILE, METRICS_FILE, load_config
from training.cli import main
from training.data.spam import load_spam_split
from training.family import TrainOptions
from training.fit.tasks.text_classification import LabelledTexts
from training.presets import fit_options
from training.presets.text_lstm import PRESET as LSTM_PRESET
from training.presets.text_transformer import PRESET as TRANSFORMER_PRESET

SMALL = ["--no-progress", "--epochs", "2", "--width", "16", "--layers", "1", "--vocab-size", "500"]


def fit_sms(repository: Path, data: Path, *args: str) -> int:
    command = ["fit", "sms", "--task", "text-classification", "--data", str(data), "--repository", str(repository)]
    return main([*command, *SMALL, *args])


def metrics_of(repository: Path) -> dict[str, Any]:
    metrics: dict[str, Any] = json.loads((repository / "sms" / "1" / METRICS_FILE).read_text())
    return metrics


def test_fit_positive_label_reports_that_class_in_metrics_config_and_card(
    fit_data: dict[str, Path], tmp_path: Path
) -> None:
    assert fit_sms(tmp_path, fit_data["sms_csv"], "--arch", "lstm", "--positive-label", "spam") == 0
    test = metrics_of(tmp_path)["test"]
    assert {"precision", "recall", "f1"} <= test.keys() and "macro_f1" not in test
    assert {"precision", "recall", "f1"} <= test["baseline"].keys()
    classification = load_config(tmp_path / "sms").classification
    assert classification is not None and classification.positive_label == "spam"
    assert "F1 of the positive class `spam`" in (tmp_path / "sms" / "1" / CARD_FILE).read_text()


def test_fit_positive_label_scores_the_named_class_not_the_other(fit_data: dict[str, Path], tmp_path: Path) -> None:
    """Scoring `ham` as positive gives ham's F1: on SMS (87% ham) far above spam's for the same predictions."""
    assert fit_sms(tmp_path / "spam", fit_data["sms_csv"], "--positive-label", "spam") == 0
    assert fit_sms(tmp_path / "ham", fit_data["sms_csv"], "--positive-label", "ham") == 0
    spam, ham = metrics_of(tmp_path / "spam")["test"], metrics_of(tmp_path / "ham")["test"]
    assert spam["accuracy"] == ham["accuracy"]  # same seed, same data: the same model
    assert ham["baseline"]["f1"] > spam["baseline"]["f1"]
    assert ham["f1"] > spam["f1"]


def test_fit_without_positive_label_reports_macro_f1(fit_data: dict[str, Path], tmp_path: Path) -> None:
    assert fit_sms(tmp_path, fit_data["sms_csv"], "--dry-run") == 0
    test = metrics_of(tmp_path)["test"]
    assert "macro_f1" in test and "f1" not in test
    classification = load_config(tmp_path / "sms").classification
    assert classification is not None and classification.positive_label is None


def test_fit_refuses_a_positive_label_that_is_not_a_class(
    fit_data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fit_sms(tmp_path, fit_data["sms_csv"], "--positive-label", "junk") == 2
    assert "--positive-label 'junk' is not a class" in capsys.readouterr().err
    assert not (tmp_path / "sms").exists()


def test_fit_refuses_a_positive_label_with_more_than_two_classes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "three.csv"
    table.write_text("text,label\n" + "".join(f"message number {i},{'abc'[i % 3]}\n" for i in range(60)))
    assert fit_sms(tmp_path, table, "--positive-label", "a") == 2
    err = capsys.readouterr().err
    assert "--positive-label needs exactly two classes" in err and "has 3: a, b, c" in err


@pytest.mark.parametrize("preset", [LSTM_PRESET, TRANSFORMER_PRESET], ids=lambda p: p.name)
def test_text_preset_loads_the_committed_split_as_the_task_loads_a_file(preset: Any) -> None:
    """The bundled SMS in the task's own form, with the fixed split intact (no item dropped as a duplicate)."""
    data = preset.load(fit_options(preset, TrainOptions(repository=Path("models"))))
    assert isinstance(data, LabelledTexts)
    reference = load_spam_split()
    assert data.split.duplicates_dropped == 0
    assert [data.texts[i] for i in data.split.test] == reference.test.texts
    assert [data.texts[i] for i in data.split.train] == reference.train.texts
    assert np.array_equal(data.y[data.split.test], reference.test.y)
    assert data.labels[data.positive or 0] == "spam"


@pytest.mark.parametrize("name", TEXT_FAMILIES)
def test_text_preset_dry_run_writes_the_fit_layout(dry_run_repository: Path, name: str) -> None:
    """`train NAME` runs the task's publish: metrics.json has `task`, `test.baseline` and spam's F1."""
    metrics = json.loads((dry_run_repository / name / "1" / METRICS_FILE).read_text())
    assert metrics["task"] == "text-classification"
    assert metrics["test"]["baseline"]["name"] == "tfidf-logreg"
    assert {"precision", "recall", "f1"} <= metrics["test"].keys()
    assert metrics["data"]["test"] == len(load_spam_split().test)
    assert f"nnserve-train train {name}" in (dry_run_repository / name / "1" / CARD_FILE).read_text()
