"""The repository under stress from its own files and from its callers: a config.yaml that cannot even be
read fails only its model (start-up still ends, shutdown still closes everything); a load whose caller
hangs up still swaps in; an unload sent during start-up loading sticks."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import httpx
import pytest
from testkit.processes import free_port, launched
from testkit.server import LOADING, PINNED_ENV

from .payloads import INFER_DIGIT
from .repository import copy_bundled, heavy_request, write_slow_loading
from .server import Server, serving, wait_for

STARTUP_TIMEOUT_S = 45.0
"""Start-up of three small models on a busy machine; before the fix it never ended."""


def _write_unreadable_configs(root: Path) -> None:
    """Two models whose config.yaml cannot be read as text at all, placed before a good one."""
    (root / "a-latin1" / "1").mkdir(parents=True)
    (root / "a-latin1" / "config.yaml").write_bytes("task: tensor\ndescription: caf\xe9\n".encode("latin-1"))
    (root / "b-folder" / "1").mkdir(parents=True)
    (root / "b-folder" / "config.yaml").mkdir()


def _events(server: Server, name: str) -> list[dict[str, object]]:
    return [event for event in server.log_events() if event.get("event") == name]


def test_unreadable_config_fails_only_its_model_and_startup_ends(tmp_path: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    _write_unreadable_configs(root)
    copy_bundled(root, "digits-cnn")
    with serving(root.resolve(), tmp_path / "server.log", timeout_s=STARTUP_TIMEOUT_S) as server:
        with server.client() as client:
            ready = client.get("/v2/health/ready")
            assert ready.status_code == 503 and set(ready.json()["models"]) == {"a-latin1", "b-folder"}, ready.text
            reasons = ready.json()["models"]
            assert "a-latin1/config.yaml: not UTF-8 text" in reasons["a-latin1"], reasons
            assert "b-folder/config.yaml: cannot read" in reasons["b-folder"], reasons
            assert str(server.repository) not in ready.text
            assert client.post("/v2/models/digits-cnn/infer", json=INFER_DIGIT).status_code == 200

            failed = {str(event["model"]): str(event["reason"]) for event in _events(server, "model_load_failed")}
            assert "config.yaml" in failed.get("a-latin1", "") and "config.yaml" in failed.get("b-folder", ""), failed

            load = client.post("/v2/repository/models/a-latin1/load")
            assert load.status_code == 400 and "a-latin1/config.yaml" in load.json()["error"], load.text
        assert server.terminate() == 0
        assert _events(server, "shutdown_complete"), server.log_excerpt()
        closed = [event for event in _events(server, "model_closed") if event.get("model") == "digits-cnn"]
        assert closed, "shutdown skipped closing the served versions"


def _versions(server: Server, name: str) -> list[str]:
    response = httpx.get(f"{server.url}/v2/models/{name}", timeout=10)
    return list(response.json().get("versions", [])) if response.status_code == 200 else []


def test_load_completes_and_swaps_in_when_its_client_hangs_up(tmp_path: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    write_slow_loading(root)
    with serving(root.resolve(), tmp_path / "server.log") as server:
        assert _versions(server, "heavy") == ["1"]
        shutil.copytree(root / "heavy" / "1", root / "heavy" / "2")
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{server.url}/v2/repository/models/heavy/load", timeout=0.3)
        loaded = lambda: any(  # noqa: E731
            e.get("event") == "model_loaded" and e.get("version") == 2 for e in server.log_events()
        )
        server.wait_for("version 2 to finish loading", loaded, 60)
        server.wait_for("version 2 to serve", lambda: _versions(server, "heavy") == ["2"], 5)
        answer = httpx.post(f"{server.url}/v2/models/heavy/infer", json=heavy_request(), timeout=10)
        assert answer.status_code == 200 and answer.json()["model_version"] == "2", answer.text


def test_unload_sent_during_startup_loading_sticks(tmp_path: Path) -> None:
    """Start-up loads `a-heavy` (seconds) first; an unload of `digits-cnn`, which start-up has not reached
    yet, must not be undone when it gets there."""
    root = tmp_path / "models"
    root.mkdir()
    write_slow_loading(root, "a-heavy")
    copy_bundled(root, "digits-cnn")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "service", "serve", "--repository", str(root), "--port", str(port)]
    log = tmp_path / "server.log"
    with launched(command, log, env={**os.environ, **PINNED_ENV}) as process:

        def live() -> bool:
            try:
                return httpx.get(f"{url}/v2/health/live", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for("the server to answer", live, 60)
        unload = httpx.post(f"{url}/v2/repository/models/digits-cnn/unload", timeout=30)
        assert unload.status_code == 200, unload.text
        still_loading = httpx.get(f"{url}/v2/health/ready", timeout=5).json().get("reason")
        assert still_loading == LOADING, "start-up ended before the unload: make a-heavy slower to load"
        ended = lambda: httpx.get(f"{url}/v2/health/ready", timeout=5).json().get("reason") != LOADING  # noqa: E731
        wait_for("start-up loading to end", ended, 60)
        rows = {row["name"]: row for row in httpx.post(f"{url}/v2/repository/index", timeout=5).json()}
        assert rows["digits-cnn"]["state"] == "UNAVAILABLE" and rows["digits-cnn"]["reason"] == "unloaded", rows
        assert rows["a-heavy"]["state"] == "READY", rows
        answer = httpx.post(f"{url}/v2/models/digits-cnn/infer", json=INFER_DIGIT, timeout=10)
        assert answer.status_code == 503, answer.text
        assert process.poll() is None
