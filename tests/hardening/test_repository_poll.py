"""Poll mode (NNSERVE_REPOSITORY_POLL_S) under load: a version published atomically (written under a
hidden name, then renamed into place) serves within the poll interval plus load time while every request
is answered; a config.yaml that does not parse keeps the served version; new model folders load, removed
ones unload."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .payloads import INFER_DIGIT
from .repository import copy_bundled
from .server import Server, serving, wait_for

POLL_S = 0.5
LOAD_BUDGET_S = 15.0
"""Loading digits-cnn on a busy two-core machine, with room to spare; measured in well under 1 s."""
CLIENTS = 4


@pytest.fixture
def poll_server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "models"
    root.mkdir()
    copy_bundled(root, "digits-cnn")
    with serving(root.resolve(), tmp_path / "server.log", env={"NNSERVE_REPOSITORY_POLL_S": str(POLL_S)}) as srv:
        yield srv


def _publish(source: Path, target: Path) -> None:
    """As the training side publishes: a complete copy under a hidden name, renamed into place."""
    staging = target.parent / f".tmp-{target.name}"
    shutil.copytree(source, staging)
    os.rename(staging, target)


def _replace_config(model_dir: Path, text: str) -> None:
    staging = model_dir / ".config.yaml.tmp"
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, model_dir / "config.yaml")


def _within(what: str, condition: Callable[[], bool], budget_s: float) -> float:
    started = time.monotonic()
    wait_for(what, condition, budget_s)
    return time.monotonic() - started


def test_poll_mode_picks_up_published_versions_and_models_without_a_failed_request(poll_server: Server) -> None:
    server = poll_server
    model_dir = server.repository / "digits-cnn"
    good_config = (model_dir / "config.yaml").read_text(encoding="utf-8")
    stop = threading.Event()
    statuses: Counter[int] = Counter()
    versions: Counter[str] = Counter()
    failures: list[str] = []
    lock = threading.Lock()

    def hammer() -> None:
        with server.client() as client:
            while not stop.is_set():
                response = client.post("/v2/models/digits-cnn/infer", json=INFER_DIGIT)
                with lock:
                    statuses[response.status_code] += 1
                    if response.status_code == 200:
                        versions[response.json()["model_version"]] += 1
                    else:
                        failures.append(response.text)

    def serves(name: str, version: str) -> Callable[[], bool]:
        def check() -> bool:
            response = httpx.get(f"{server.url}/v2/models/{name}", timeout=5)
            return response.status_code == 200 and response.json()["versions"] == [version]

        return check

    def logged(event: str, text: str) -> Callable[[], bool]:
        return lambda: any(e.get("event") == event and text in str(e) for e in server.log_events())

    with ThreadPoolExecutor(CLIENTS) as pool:
        workers = [pool.submit(hammer) for _ in range(CLIENTS)]
        try:
            wait_for("requests on version 1", lambda: versions["1"] > 20)
            _publish(model_dir / "1", model_dir / "2")
            took = _within("version 2 to serve", serves("digits-cnn", "2"), POLL_S + LOAD_BUDGET_S)
            wait_for("requests on version 2", lambda: versions["2"] > 20)

            _replace_config(model_dir, "batching: [this is not a mapping\n")
            reported = logged("model_load_failed", "config.yaml")
            wait_for("the bad config.yaml to be reported", reported, POLL_S + LOAD_BUDGET_S)
            before = versions["2"]
            wait_for("version 2 to keep serving", lambda: versions["2"] > before + 20)

            _replace_config(model_dir, good_config)
            staging = server.repository.parent / "digits-copy"
            shutil.copytree(model_dir, staging)
            (staging / "config.yaml").write_text(good_config.replace("name: digits-cnn", "name: digits-copy"))
            _publish(staging, server.repository / "digits-copy")
            _within("the new model to serve", serves("digits-copy", "2"), POLL_S + LOAD_BUDGET_S)

            shutil.move(server.repository / "digits-copy", server.repository.parent / "removed")
            _within("the removed model to go", lambda: not serves("digits-copy", "2")(), POLL_S + LOAD_BUDGET_S)
        finally:
            stop.set()
        for worker in workers:
            worker.result()
    assert not failures, failures[:5]
    assert set(statuses) == {200}, statuses
    assert took < POLL_S + LOAD_BUDGET_S
    unknown = httpx.post(f"{server.url}/v2/models/digits-copy/infer", json=INFER_DIGIT, timeout=5)
    assert unknown.status_code == 404, unknown.text
