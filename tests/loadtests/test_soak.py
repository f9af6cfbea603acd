"""The soak (`loadtests/soak.py`): its RSS arithmetic, a quick run in the normal suite, and the one-minute
run of the long mode (opt-in, like the long fuzzing run: `NNSERVE_SOAK_LONG=1`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadtests.soak import rss_growth, verdict

MB = 2**20


def test_rss_growth_compares_medians_after_warmup() -> None:
    samples = [(float(t), (100 if t < 10 else 200 if t == 12 else 110) * MB) for t in range(0, 31)]
    warm, end, growth = rss_growth(samples, warmup_s=10)
    assert (warm, end) == (110 * MB, 110 * MB)  # the lone 200 MB sample (a reload) moves no median
    assert growth == 0


def test_verdict_fails_on_5xx_hung_or_growth() -> None:
    fine: dict[str, Any] = {"unexpected_5xx": 0, "hung": 0, "rss_growth_pct": 9.9}
    assert verdict(fine, 10)
    assert not verdict({**fine, "unexpected_5xx": 1}, 10)
    assert not verdict({**fine, "hung": 1}, 10)
    assert not verdict({**fine, "rss_growth_pct": 10.0}, 10)


def _soak(tmp_path: Path, *args: str, timeout_s: float) -> dict[str, Any]:
    report = tmp_path / "soak.json"
    command = [sys.executable, "-m", "loadtests.soak", "--json", str(report), *args]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    result: dict[str, Any] = json.loads(report.read_text())
    return result


def _check(report: dict[str, Any]) -> None:
    assert set(report["statuses"]) == {"infer", "predict", "generate_stream", "completions"}
    assert all(set(statuses) == {"200"} for statuses in report["statuses"].values()), report["statuses"]
    assert report["disconnects"].get("mid-request", 0) > 0
    assert report["disconnects"].get("mid-stream", 0) > 0
    assert set(report["reloads"]) == {"200"}
    assert (report["unexpected_5xx"], report["hung"]) == (0, 0)
    assert report["graceful_shutdown"]


@pytest.mark.slow
def test_quick_soak_passes(tmp_path: Path) -> None:
    _check(_soak(tmp_path, "--minutes", "0.25", "--reload-every-s", "5", "--clients", "6", timeout_s=150))


@pytest.mark.slow
@pytest.mark.timeout(400)
@pytest.mark.skipif(not os.environ.get("NNSERVE_SOAK_LONG"), reason="long soak: set NNSERVE_SOAK_LONG=1")
def test_one_minute_soak_passes(tmp_path: Path) -> None:
    report = _soak(tmp_path, "--minutes", "1", timeout_s=360)
    _check(report)
    assert report["rss_growth_pct"] < 10
