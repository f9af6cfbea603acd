"""`:predict` and the playground's preprocess route read the whole body before they lease the model version:
a client that stalls its upload must not keep a version that was unloaded (or reloaded) open."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from . import keys
from .repository import copy_bundled
from .server import Server, serving, wait_for

ADMIN = keys.bearer(keys.ADMIN_KEYS[0])
MODEL = "digits-cnn"


@pytest.fixture(scope="module")
def unload_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("lease-order")
    root = base / "models"
    root.mkdir()
    copy_bundled(root, MODEL)
    with serving(root.resolve(), base / "server.log", env=keys.server_env()) as srv:
        yield srv


def _closed_count(server: Server) -> int:
    return sum(1 for e in server.log_events() if e.get("event") == "model_closed" and e.get("model") == MODEL)


@pytest.mark.parametrize("path", [f"/v1/models/{MODEL}:predict", f"/ui/models/{MODEL}/preprocess"])
def test_stalled_upload_does_not_keep_an_unloaded_version_open(unload_server: Server, path: str) -> None:
    with unload_server.client() as client:
        assert client.post(f"/v2/repository/models/{MODEL}/load", headers=ADMIN).status_code == 200
        closed_before = _closed_count(unload_server)
        with socket.create_connection(("127.0.0.1", unload_server.port), timeout=30) as stalled:
            head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n"
            stalled.sendall(head.encode() + b'{"instances": [')
            wait_for(
                "the stalled request to be in flight", lambda: unload_server.metric("nnserve_requests_in_flight") >= 1
            )
            assert client.post(f"/v2/repository/models/{MODEL}/unload", headers=ADMIN).status_code == 200
            unload_server.wait_for(
                "the unloaded version to close while the upload stalls",
                lambda: _closed_count(unload_server) > closed_before,
                timeout_s=10,
            )
