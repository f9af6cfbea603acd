"""The repository under stress from its own files and from its callers: a config.yaml that cannot even be
read fails only its model (start-up still ends, shutdown still closes everything); a load whose caller
hangs up still swaps in; an unload sent during start-up loading sticks."""

from __future__ import annotations

from pathlib import Path

from .payloads import INFER_DIGIT
from .repository import copy_bundled
from .server import Server, serving

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
