"""CI smoke: the headless runner against the real service with every user class, and a quick benchmark."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit.server import running_server

from loadtests.results import ARMS
from loadtests.stats import read_final_stats
from loadtests.streaming import TTFT

REPOSITORY = Path(__file__).resolve().parents[2] / "models"
EXPECTED_ENDPOINTS = [
    ("POST", "/v1/models/digits-cnn:predict [upload]"),
    ("POST", "/v2/models/digits-cnn/infer"),
    ("POST", "/v1/models/text-transformer:predict"),
    ("POST", "/v1/models/text-lstm:predict"),
    ("POST", "/v1/models/digits-ae:predict"),
    ("POST", "/v2/models/tiny-gpt/generate"),
    ("POST", "/v1/completions"),
    ("POST", "/v2/models/tiny-gpt/generate_stream"),
    (TTFT, "/v2/models/tiny-gpt/generate_stream"),
]
"""One row per endpoint the user classes call (locust's stats key: request type and name)."""


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("server-log") / "nnserve.log"
    with running_server(REPOSITORY, log, require_ready=True) as server:
        yield server.url


@pytest.mark.slow
def test_headless_run_hits_every_endpoint_without_failures(server_url: str, tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "loadtests.run",
        "--host",
        server_url,
        "--duration",
        "15",
        "--users",
        "12",
    ]
    command += ["--out", str(tmp_path), "--max-error-rate", "0", "--max-p95-ms", "10000"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=150)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    rows = {(row.type, row.name): row for row in read_final_stats(tmp_path / "locust_final.json")}
    assert [e for e in EXPECTED_ENDPOINTS if e not in rows or rows[e].requests == 0] == []
    assert {key: row.failures for key, row in rows.items() if row.failures} == {}
    assert (tmp_path / "report.html").stat().st_size > 0


@pytest.mark.slow
def test_bench_quick_writes_report_plot_and_rerenderable_run(tmp_path: Path) -> None:
    out, saved = tmp_path / "benchmarks.md", tmp_path / "run.json"
    command = [sys.executable, "-m", "loadtests.bench", "--quick", "--models", "digits-cnn"]
    command += ["--concurrency", "1", "4", "--repository", str(REPOSITORY), "--out", str(out), "--json", str(saved)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=280)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    text = out.read_text()
    served_rows = re.findall(r"^\| (.+?) \| ([14]) \| .* \| (\d+) \|$", text, flags=re.MULTILINE)
    assert sorted((arm, clients) for arm, clients, _ in served_rows) == sorted(
        (arm, c) for arm in ARMS.values() for c in ("1", "4")
    )
    assert [errors for *_, errors in served_rows] == ["0"] * len(served_rows)
    assert (tmp_path / "img" / "bench-digits-cnn.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = tmp_path / "again" / "benchmarks.md"
    rerender = [sys.executable, "-m", "loadtests.bench", "--render-only", str(saved), "--out", str(again)]
    assert subprocess.run(rerender, capture_output=True, timeout=120).returncode == 0
    assert again.read_text() == text
