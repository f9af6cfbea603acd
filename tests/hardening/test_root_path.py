"""A deployment under a path prefix (`uvicorn --root-path /nnserve` behind a prefix-stripping proxy): API keys,
open probes and error shapes must match on the path routing sees, not on the prefixed `scope["path"]`."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import httpx
import pytest
from testkit import processes
from testkit.server import PINNED_ENV
from testkit.server import serving as serving_command

from . import keys
from .payloads import INFER_DIGIT
from .rawhttp import exchange
from .repository import copy_bundled
from .server import Server

ROOT_PATH = "/nnserve"


@pytest.fixture(scope="module", params=["uvicorn", "nnserve"])
def prefixed_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app under plain uvicorn with `--root-path`, and under `nnserve serve --root-path`; keys configured
    and inference guarded."""
    base = tmp_path_factory.mktemp("root-path")
    root = base / "models"
    root.mkdir()
    copy_bundled(root, "digits-cnn")
    port = processes.free_port()
    if request.param == "uvicorn":
        command = [sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app", "--host", "127.0.0.1"]
    else:
        command = [sys.executable, "-m", "service", "serve"]
    command += ["--root-path", ROOT_PATH, "--port", str(port)]
    env = {**os.environ, **PINNED_ENV, **keys.server_env(), "NNSERVE_REPOSITORY": str(root.resolve()),
           "NNSERVE_AUTH_INFERENCE": "true"}  # fmt: skip
    with serving_command(command, base / "server.log", port=port, env=env) as base_server:
        yield Server(**{name: getattr(base_server, name) for name in base_server.__dataclass_fields__})


def test_repository_changes_under_a_root_path_need_an_admin_key(prefixed_server: Server) -> None:
    with prefixed_server.client() as client:
        anonymous = client.post("/v2/repository/models/digits-cnn/unload")
        assert anonymous.status_code == 401, anonymous.text
        inference = client.post("/v2/repository/models/digits-cnn/unload", headers=keys.bearer(keys.INFERENCE_KEY))
        assert inference.status_code == 403, inference.text
        assert client.get("/v2/models/digits-cnn/ready", headers=keys.bearer(keys.INFERENCE_KEY)).status_code == 200
        admin = client.post("/v2/repository/models/digits-cnn/load", headers=keys.bearer(keys.ADMIN_KEYS[0]))
        assert admin.status_code == 200, admin.text


def test_probes_under_a_root_path_need_no_key(prefixed_server: Server) -> None:
    with prefixed_server.client() as client:
        for path in ("/v2/health/live", "/v2/health/ready", "/metrics"):
            assert client.get(path).status_code == 200, path


def test_inference_under_a_root_path_needs_a_key_on_the_fast_path(prefixed_server: Server) -> None:
    with prefixed_server.client() as client:
        assert client.post("/v2/models/digits-cnn/infer", json=INFER_DIGIT).status_code == 401
        answer = client.post("/v2/models/digits-cnn/infer", json=INFER_DIGIT, headers=keys.bearer(keys.INFERENCE_KEY))
        assert answer.status_code == 200, answer.text


def test_openai_errors_under_a_root_path_keep_their_shape(prefixed_server: Server) -> None:
    response = httpx.post(
        f"{prefixed_server.url}/v1/completions", json={"model": "x", "prompt": "O", "max_tokens": 1}, timeout=10
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_body_limit_on_openai_routes_under_a_root_path_keeps_their_shape(prefixed_server: Server) -> None:
    """The 413 the request middleware answers before any route runs."""
    headers = {**keys.bearer(keys.ADMIN_KEYS[0]), "Content-Length": str(64 * 1024 * 1024)}
    response = exchange(prefixed_server.port, "POST", "/v1/completions", headers, [])
    assert response.status == 413, response.body
    error = response.json()
    assert isinstance(error, dict) and isinstance(error["error"], dict), error
