"""Short real `fit` runs on every task with loose floors near the classical baseline, the same answers
over HTTP `:predict` as offline for the tasks the server already serves, and `--reload`."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from testkit.server import Server, running_server

from training.cli import main
from training.fit.options import FitOptions
from training.fit.split import split_rows
from training.fit.tables import read_table
from training.fit.tasks.anomaly_detection import load_images
from training.fit.tasks.image_classification import load_labelled

QUICK = ["--no-progress", "--seed", "0"]


def fit(repository: Path, name: str, data: Path, *args: str) -> dict[str, Any]:
    assert main(["fit", name, "--data", str(data), "--repository", str(repository), *QUICK, *args]) == 0
    metrics: dict[str, Any] = json.loads((repository / name / "1" / "metrics.json").read_text())
    return metrics


@pytest.fixture(scope="module")
def trained(fit_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    repository = tmp_path_factory.mktemp("fit-repo")
    return {
        "repository": repository,
        "digits": fit(repository, "digits", fit_data["digits"], "--task", "image-classification", "--epochs", "4"),
        "sms": fit(repository, "sms", fit_data["sms_jsonl"], "--task", "text-classification", "--epochs", "10"),
        "zeros": fit(
            repository,
            "zeros",
            fit_data["digits"],
            "--task",
            "anomaly-detection",
            "--normal-label",
            "0",
            "--epochs",
            "8",
        ),
    }


@pytest.fixture(scope="module")
def server(trained: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("fit-server") / "server.log"
    with running_server(trained["repository"], log, require_ready=True) as srv:
        yield srv


def test_fit_image_classification_reaches_the_pixel_baseline(trained: dict[str, Any]) -> None:
    test = trained["digits"]["test"]
    assert test["accuracy"] >= 0.9
    assert test["accuracy"] >= test["baseline"]["accuracy"] - 0.05


def test_fit_text_classification_reaches_the_tfidf_baseline(trained: dict[str, Any]) -> None:
    test = trained["sms"]["test"]
    assert test["accuracy"] >= 0.9
    assert test["accuracy"] >= test["baseline"]["accuracy"] - 0.05


def test_fit_tabular_classification_reaches_logistic_regression(fit_data: dict[str, Path], tmp_path: Path) -> None:
    test = fit(tmp_path, "bc", fit_data["breast_cancer"], "--task", "tabular-classification")["test"]
    assert test["accuracy"] >= 0.9
    assert test["accuracy"] >= test["baseline"]["logistic_regression"]["accuracy"] - 0.06


def test_fit_image_anomaly_detection_separates_other_digits(trained: dict[str, Any]) -> None:
    metrics = trained["zeros"]
    assert metrics["test"]["auroc"] >= 0.9
    assert metrics["test"]["auroc"] >= metrics["test"]["baseline"]["auroc"] - 0.1
    assert metrics["data"]["normal_training_items"] < metrics["data"]["train"]


def test_fit_table_anomaly_detection_is_near_isolation_forest(fit_data: dict[str, Path], tmp_path: Path) -> None:
    test = fit(
        tmp_path,
        "bc-ae",
        fit_data["breast_cancer"],
        "--task",
        "anomaly-detection",
        "--label-column",
        "label",
        "--normal-label",
        "benign",
    )["test"]
    assert test["auroc"] >= 0.75
    assert test["auroc"] >= test["baseline"]["auroc"] - 0.15


def test_fit_text_generation_learns_below_uniform_perplexity(fit_data: dict[str, Path], tmp_path: Path) -> None:
    metrics = fit(
        tmp_path,
        "gpt",
        fit_data["plays"],
        "--task",
        "text-generation",
        "--epochs",
        "2",
        "--context",
        "32",
        "--width",
        "32",
        "--vocab-size",
        "512",
    )
    vocab = metrics["hyperparameters"]["vocab_size"]
    assert metrics["test"]["test_perplexity"] < vocab / 2
    assert metrics["test"]["baseline"]["test_perplexity"] > 1.0
    assert (tmp_path / "gpt" / "1" / "decode_parity.json").is_file()


def _predicted(server: Server, model: str, instances: list[Any]) -> list[str]:
    labels: list[str] = []
    for start in range(0, len(instances), 32):
        response = httpx.post(
            f"{server.url}/v1/models/{model}:predict", json={"instances": instances[start : start + 32]}, timeout=60
        )
        assert response.status_code == 200, response.text
        labels += [p["label"] for p in response.json()["predictions"]]
    return labels


def test_fit_image_classifier_answers_over_http_as_evaluated_offline(
    trained: dict[str, Any], server: Server, fit_data: dict[str, Path]
) -> None:
    options = FitOptions(name="digits", task="image-classification", data=fit_data["digits"])
    images, labels, y, split = load_labelled(options)
    instances = [{"b64": base64.b64encode(images.files[i].read_bytes()).decode()} for i in split.test]
    predicted = _predicted(server, "digits", instances)
    accuracy = float(np.mean([p == labels[y[i]] for p, i in zip(predicted, split.test, strict=True)]))
    assert abs(accuracy - trained["digits"]["test"]["accuracy"]) <= 1 / len(split.test) + 1e-9


def test_fit_text_classifier_answers_over_http_as_evaluated_offline(
    trained: dict[str, Any], server: Server, fit_data: dict[str, Path]
) -> None:
    options = FitOptions(name="sms", task="text-classification", data=fit_data["sms_jsonl"])
    table = read_table(options.data)
    texts = [str(t) for t in table.cells["text"]]
    labels = [str(v) for v in table.cells["label"]]
    split = split_rows(len(texts), options, labels=labels, keys=[t.strip() for t in texts])
    predicted = _predicted(server, "sms", [texts[i] for i in split.test])
    accuracy = float(np.mean([p == labels[i] for p, i in zip(predicted, split.test, strict=True)]))
    assert abs(accuracy - trained["sms"]["test"]["accuracy"]) <= 1 / len(split.test) + 1e-9


def test_fit_image_anomaly_detector_flags_over_http_as_evaluated_offline(
    trained: dict[str, Any], server: Server, fit_data: dict[str, Path]
) -> None:
    options = FitOptions(name="zeros", task="anomaly-detection", data=fit_data["digits"], normal_label="0")
    loaded = load_images(options)
    images, flags, split = loaded.images, loaded.flags, loaded.split
    assert flags is not None
    anomalous = np.asarray([flags[i] == "anomaly" for i in split.test])
    instances = [{"b64": base64.b64encode(images.files[i].read_bytes()).decode()} for i in split.test]
    flagged: list[bool] = []
    for start in range(0, len(instances), 32):
        response = httpx.post(
            f"{server.url}/v1/models/zeros:predict", json={"instances": instances[start : start + 32]}, timeout=60
        )
        assert response.status_code == 200, response.text
        flagged += [p["is_anomaly"] for p in response.json()["predictions"]]
    recall = float(np.asarray(flagged)[anomalous].mean())
    offline = trained["zeros"]["test"]
    assert abs(recall - offline["recall"]) <= 1 / int(anomalous.sum()) + 1e-9
    false_positive_rate = float(np.asarray(flagged)[~anomalous].mean())
    assert abs(false_positive_rate - offline["false_positive_rate"]) <= 1 / int((~anomalous).sum()) + 1e-9


def test_fit_reload_makes_a_running_server_serve_the_new_model(
    trained: dict[str, Any], server: Server, fit_data: dict[str, Path]
) -> None:
    repository = trained["repository"]
    assert httpx.get(f"{server.url}/v2/models/fresh/ready", timeout=10).status_code != 200
    assert (
        main(
            [
                "fit",
                "fresh",
                "--task",
                "image-classification",
                "--data",
                str(fit_data["digits"]),
                "--dry-run",
                "--repository",
                str(repository),
                "--reload",
                server.url,
                *QUICK,
            ]
        )
        == 0
    )
    assert httpx.get(f"{server.url}/v2/models/fresh/ready", timeout=10).status_code == 200


def test_fit_reload_failure_is_reported_after_publishing(fit_data: dict[str, Path], tmp_path: Path) -> None:
    from testkit.processes import free_port

    code = main(
        [
            "fit",
            "iris",
            "--task",
            "tabular-classification",
            "--data",
            str(fit_data["iris"]),
            "--dry-run",
            "--repository",
            str(tmp_path),
            "--reload",
            f"http://127.0.0.1:{free_port()}",
            *QUICK,
        ]
    )
    assert code == 2
    assert (tmp_path / "iris" / "1" / "model.onnx").is_file()
