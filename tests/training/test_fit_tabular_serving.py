"""Tabular `fit` models over HTTP: no train/serve skew (the held-out rows, sent as the CSV's own cells by
column name, score as the offline evaluation did), and a new version published by `fit` into a polled
repository serves within the poll interval plus load time while every request is answered."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from testkit.processes import wait_for
from testkit.server import Server, running_server

from training.cli import main
from training.fit.options import FitOptions
from training.fit.tasks.tabular_classification import TableData, load_table_data

QUICK = ["--no-progress", "--seed", "0", "--epochs", "10"]
ANOMALY = ["--label-column", "label", "--normal-label", "benign"]
POLL_S = 0.5
LOAD_BUDGET_S = 15.0
"""Loading a small MLP on a busy two-core machine, with room to spare."""


def fit(repository: Path, name: str, data: Path, task: str, *args: str) -> dict[str, Any]:
    command = ["fit", name, "--task", task, "--data", str(data), "--repository", str(repository), *QUICK, *args]
    assert main(command) == 0
    latest = max(int(p.name) for p in (repository / name).iterdir() if p.name.isdigit())
    metrics: dict[str, Any] = json.loads((repository / name / str(latest) / "metrics.json").read_text())
    return metrics


@pytest.fixture(scope="module")
def trained(fit_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """breast_cancer.csv (5% of cells empty, the string column `band`) fit for both tabular tasks."""
    repository = tmp_path_factory.mktemp("tabular-repo")
    data = fit_data["breast_cancer"]
    return {
        "repository": repository,
        "bc": fit(repository, "bc", data, "tabular-classification"),
        "bc-ae": fit(repository, "bc-ae", data, "anomaly-detection", *ANOMALY),
    }


@pytest.fixture(scope="module")
def server(trained: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("tabular-server") / "server.log"
    with running_server(trained["repository"], log, require_ready=True) as srv:
        yield srv


def held_out_rows(data: TableData) -> list[dict[str, str | None]]:
    """The held-out test rows as the CSV holds them: every feature cell's text by column name (null = empty)."""
    return [{c: data.table.cells[c][i] for c in data.feature_columns} for i in data.split.test]


def predictions(server: Server, model: str, rows: list[dict[str, str | None]]) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    for start in range(0, len(rows), 32):
        response = httpx.post(
            f"{server.url}/v1/models/{model}:predict", json={"instances": rows[start : start + 32]}, timeout=60
        )
        assert response.status_code == 200, response.text
        answers += response.json()["predictions"]
    return answers


def test_fit_tabular_classifier_answers_csv_rows_over_http_as_evaluated_offline(
    trained: dict[str, Any], server: Server, fit_data: dict[str, Path]
) -> None:
    options = FitOptions(name="bc", task="tabular-classification", data=fit_data["breast_cancer"])
    data = load_table_data(options, "label", stratify=True)
    rows = held_out_rows(data)
    assert any(not v for row in rows for v in row.values())  # empty (missing) cells travel as they are
    predicted = [p["label"] for p in predictions(server, "bc", rows)]
    truth = [data.labels[i] for i in data.split.test]
    accuracy = float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))
    assert abs(accuracy - trained["bc"]["test"]["accuracy"]) <= 1 / len(rows) + 1e-9


def test_fit_tabular_anomaly_detector_flags_csv_rows_over_http_as_evaluated_offline(
    trained: dict[str, Any], server: Server, fit_data: dict[str, Path]
) -> None:
    options = FitOptions(
        name="bc-ae",
        task="anomaly-detection",
        data=fit_data["breast_cancer"],
        label_column="label",
        normal_label="benign",
    )
    data = load_table_data(options, "label", stratify=True)
    anomalous = np.asarray([data.labels[i] != "benign" for i in data.split.test])
    flagged = np.asarray([p["is_anomaly"] for p in predictions(server, "bc-ae", held_out_rows(data))])
    offline = trained["bc-ae"]["test"]
    assert abs(float(flagged[anomalous].mean()) - offline["recall"]) <= 1 / int(anomalous.sum()) + 1e-9
    false_positive_rate = float(flagged[~anomalous].mean())
    assert abs(false_positive_rate - offline["false_positive_rate"]) <= 1 / int((~anomalous).sum()) + 1e-9


def test_fit_publishing_into_a_polled_repository_switches_versions_without_a_failed_request(
    fit_data: dict[str, Path], tmp_path: Path
) -> None:
    repository = tmp_path / "repo"
    data = fit_data["breast_cancer"]
    fit(repository, "bc", data, "tabular-classification", "--dry-run")
    options = FitOptions(name="bc", task="tabular-classification", data=data)
    rows = held_out_rows(load_table_data(options, "label", stratify=True))[:8]
    env = {"NNSERVE_REPOSITORY_POLL_S": str(POLL_S)}
    with running_server(repository, tmp_path / "server.log", env=env, require_ready=True) as server:
        stop = threading.Event()
        statuses: Counter[int] = Counter()
        failures: list[str] = []

        def hammer() -> None:
            with server.client() as client:
                while not stop.is_set():
                    response = client.post("/v1/models/bc:predict", json={"instances": rows})
                    statuses[response.status_code] += 1
                    if response.status_code != 200:
                        failures.append(response.text)

        def serves(version: str) -> bool:
            response = httpx.get(f"{server.url}/v2/models/bc", timeout=5)
            return response.status_code == 200 and response.json()["versions"] == [version]

        client = threading.Thread(target=hammer)
        client.start()
        try:
            wait_for("requests on version 1", lambda: statuses[200] > 10, 30)
            fit(repository, "bc", data, "tabular-classification", "--dry-run")  # version 2, trained meanwhile
            published = time.monotonic()
            wait_for("version 2 to serve", lambda: serves("2"), POLL_S + LOAD_BUDGET_S)
            took = time.monotonic() - published
            served = statuses[200]
            wait_for("requests on version 2", lambda: statuses[200] > served + 10, 30)
        finally:
            stop.set()
            client.join(timeout=60)
    assert not failures, failures[:5]
    assert set(statuses) == {200}, statuses
    assert took < POLL_S + LOAD_BUDGET_S
