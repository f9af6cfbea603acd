"""The soak (`loadtests/soak.py`): its RSS arithmetic, a quick run in the normal suite, and the one-minute
run of the long mode (opt-in, like the long fuzzing run: `NNSERVE_SOAK_LONG=1`)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from testkit.server import running_server

from loadtests import soak as soak_module
from loadtests.inputs import b64, digit_images, digit_pngs
from loadtests.servers import free_port
from loadtests.soak import Soak, Tally, rss_growth, verdict

MB = 2**20


def test_rss_growth_compares_medians_after_warmup() -> None:
    samples = [(float(t), (100 if t < 10 else 200 if t == 12 else 110) * MB) for t in range(0, 31)]
    warm, end, growth = rss_growth(samples, warmup_s=10)
    assert (warm, end) == (110 * MB, 110 * MB)  # the lone 200 MB sample (a reload) moves no median
    assert growth == 0


def test_verdict_fails_on_5xx_hung_connection_error_or_growth() -> None:
    fine: dict[str, Any] = {"unexpected_5xx": 0, "hung": 0, "transport_errors": 0, "rss_growth_pct": 9.9}
    assert verdict(fine, 10)
    assert not verdict({**fine, "unexpected_5xx": 1}, 10)
    assert not verdict({**fine, "hung": 1}, 10)
    assert not verdict({**fine, "transport_errors": 1}, 10)
    assert not verdict({**fine, "rss_growth_pct": 10.0}, 10)


def test_reload_without_answer_counts_as_connection_error() -> None:
    """A reload that gets no answer is a failure in the report, not a crash of the run (a pool timeout of
    the reloader once ended a 10-minute soak without any report)."""
    tally = Tally()

    async def reload_once() -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{free_port()}") as nobody_listens:
            await soak_module._reloads(nobody_listens, tally, every_s=0.01, stop_at=time.monotonic() + 0.015)

    asyncio.run(reload_once())
    assert tally.transport_errors == 1
    assert not tally.reloads
    assert tally.examples[0].startswith("reload digits-cnn: ConnectError")


@pytest.fixture(scope="module")
def digits_url(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("soak-repository")
    shutil.copytree(soak_module.BUNDLED / "digits-cnn", root / "digits-cnn")
    with running_server(root, root / "nnserve.log", require_ready=True) as server:
        yield server.url


@pytest.mark.slow
def test_hang_ups_mid_request_leave_the_clients_connection_usable(
    digits_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests cancelled mid-request go through throwaway clients: in the client's own one-connection pool,
    httpx now and then left a cancelled request's connection marked active for good, and every later
    request of that client then waited for a connection that never came (the soak's pool timeout)."""
    monkeypatch.setattr(soak_module, "KINDS", ("infer", "predict"))

    def connect() -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=digits_url, limits=httpx.Limits(max_connections=1), timeout=None)

    tally = Tally()
    client = Soak(
        connect,
        tally,
        hung_after_s=20.0,
        disconnect_rate=1.0,
        rng=random.Random(3),
        pictures=tuple(b64(png) for png in digit_pngs()),
        digits=[image.reshape(-1).tolist() for image in digit_images()],
    )

    async def hang_ups_then_answers() -> None:
        for _ in range(120):
            await client.one()
        client.disconnect_rate = 0.0
        for _ in range(5):
            await client.one()
        await client.close()

    asyncio.run(hang_ups_then_answers())
    # How many cancels land before the answer depends on the machine's speed (24 of 120 on a quiet one).
    assert tally.disconnects["mid-request"] >= 10
    assert (tally.hung, tally.transport_errors) == (0, 0), tally.examples
    assert sum(n for (_, status), n in tally.statuses.items() if status == 200) >= 5


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
