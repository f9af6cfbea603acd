"""Opt-in (NNSERVE_RELOAD_SOAK=1): 200 hot reloads under load, resident memory measured after each.

Every closed version runs `refreeze()` (service/runtime/collector.py): a full collection, then
`gc.freeze()` of everything alive, which includes the objects of requests in flight at that moment. This
measures whether that (or anything else in a reload) makes memory grow with the number of reloads: four
clients send `:predict` and v2 requests without pause, a fifth hangs up on half of its requests, and
`digits-cnn` is reloaded 200 times. Growth after a warm-up of 20 reloads must stay under 10%.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .payloads import INFER_DIGIT, PREDICT_DIGIT
from .repository import copy_bundled
from .server import Server, serving, wait_for

RELOADS = int(os.environ.get("NNSERVE_RELOAD_SOAK_RELOADS", "200"))
WARM_UP = RELOADS // 10
MAX_GROWTH_FRACTION = 0.10
CLIENTS = 4

pytestmark = pytest.mark.skipif(
    not os.environ.get("NNSERVE_RELOAD_SOAK"), reason="reload soak (a few minutes): set NNSERVE_RELOAD_SOAK=1"
)


@pytest.fixture
def soak_server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "models"
    root.mkdir()
    copy_bundled(root, "digits-cnn")
    with serving(root.resolve(), tmp_path / "server.log") as srv:
        yield srv


def test_rss_stays_flat_over_200_reloads_under_load(soak_server: Server) -> None:
    server = soak_server
    stop = threading.Event()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def hammer(index: int) -> None:
        with server.client() as client:
            while not stop.is_set():
                if index % 2:
                    response = client.post("/v1/models/digits-cnn:predict", json=PREDICT_DIGIT)
                else:
                    response = client.post("/v2/models/digits-cnn/infer", json=INFER_DIGIT)
                with lock:
                    statuses[response.status_code] += 1

    def hang_up() -> None:
        while not stop.is_set():
            with contextlib.suppress(httpx.TimeoutException):
                httpx.post(f"{server.url}/v2/models/digits-cnn/infer", json=INFER_DIGIT, timeout=0.001)

    samples: list[int] = []
    with ThreadPoolExecutor(CLIENTS + 1) as pool, server.client() as admin:
        workers = [pool.submit(hammer, i) for i in range(CLIENTS)] + [pool.submit(hang_up)]
        try:
            wait_for("traffic", lambda: sum(statuses.values()) > 50)
            for _ in range(RELOADS):
                loaded = admin.post("/v2/repository/models/digits-cnn/load")
                assert loaded.status_code == 200, loaded.text
                samples.append(server.rss_bytes())
        finally:
            stop.set()
        for worker in workers:
            worker.result()
    mib = [round(s / 2**20, 1) for s in samples]
    warm = samples[WARM_UP - 1]
    growth = max(samples[WARM_UP:]) - warm
    print(
        f"{sum(statuses.values())} requests answered; RSS after reload {WARM_UP}: {mib[WARM_UP - 1]} MiB, "
        f"max after: {max(mib[WARM_UP:])} MiB, last: {mib[-1]} MiB"
    )
    assert set(statuses) == {200}, statuses
    assert growth < MAX_GROWTH_FRACTION * warm, f"RSS by reload (MiB): {mib}"
