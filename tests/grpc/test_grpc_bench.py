"""loadtests.bench_grpc in a short run: it serves one model, drives the three arms and writes its section
into an existing report without touching the rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from loadtests.bench_grpc import END, START, write_section

ROOT = Path(__file__).resolve().parents[2]


def test_write_section_replaces_only_its_own_section(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\nHTTP tables\n", encoding="utf-8")
    write_section(report, f"{START}\nfirst\n{END}\n")
    write_section(report, f"{START}\nsecond\n{END}\n")
    text = report.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nHTTP tables\n")
    assert "second" in text and "first" not in text
    assert text.count(START) == 1


def test_short_run_measures_grpc_http_binary_and_json(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n", encoding="utf-8")
    run = subprocess.run(
        [
            sys.executable, "-m", "loadtests.bench_grpc", "--repository", str(ROOT / "models"),
            "--models", "digits-cnn", "--concurrency", "2", "--repeats", "1", "--duration", "0.3",
            "--warmup", "0.1", "--server-cpus", "", "--client-cpus", "", "--out", str(report),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    text = report.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "| 2 |" in line]
    assert [row.split("|")[1].strip() for row in rows] == ["grpc", "http-binary", "http-json"]
    assert all(row.rstrip("| ").endswith("| 0") for row in rows), rows  # no errors
    assert "gRPC / HTTP binary" in text
