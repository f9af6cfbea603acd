"""Access control: API keys for the repository API (and for inference when configured), 401/403 answers,
model names that cannot leave the repository, CORS off unless configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import orjson
import pytest

from . import keys
from .conftest import OUTSIDE_MODEL
from .payloads import INFER_DIGIT, PREDICT_DIGIT
from .rawhttp import exchange
from .repository import copy_bundled
from .server import Server, serving

LOAD = "/v2/repository/models/digits-cnn/load"
ALLOWED_ORIGIN = "https://playground.example"


@pytest.mark.parametrize("action", ["load", "unload"])
def test_repository_changes_without_a_key_get_401_with_a_bearer_challenge(server: Server, action: str) -> None:
    for headers in ({}, keys.bearer("wrong-key"), {"X-API-Key": "wrong-key"}, {"Authorization": "Basic YWRtaW4="}):
        response = httpx.post(f"{server.url}/v2/repository/models/digits-ae/{action}", headers=headers, timeout=10)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "API key" in response.json()["error"]
        assert "wrong-key" not in response.text, "a rejected key is not echoed back"


def test_every_admin_key_and_both_header_forms_may_change_the_repository(server: Server) -> None:
    accepted = [keys.bearer(k) for k in keys.ADMIN_KEYS]
    accepted += [keys.bearer(keys.LEGACY_KEY), {"X-API-Key": keys.ADMIN_KEYS[1]}]
    accepted += [{"Authorization": f"bearer {keys.ADMIN_KEYS[0]}"}]  # the scheme is case-insensitive
    with server.client() as client:
        for headers in accepted:
            assert client.post("/v2/repository/models/digits-ae/load", headers=headers).status_code == 200, headers
        assert client.post("/v1/models/digits-ae:predict", json={"instances": [[0.0] * 64]}).status_code == 200


def test_inference_key_may_not_change_the_repository(server: Server) -> None:
    response = httpx.post(f"{server.url}{LOAD}", headers=keys.bearer(keys.INFERENCE_KEY), timeout=10)
    assert response.status_code == 403, response.text
    assert "repository" in response.json()["error"]


def test_inference_is_open_unless_configured(server: Server) -> None:
    with server.client() as client:
        assert client.post("/v2/models/digits-cnn/infer", json=INFER_DIGIT).status_code == 200
        assert client.post("/v2/repository/index").status_code == 200


TRAVERSALS = [
    "..",
    "%2e%2e",
    "%2E%2E",
    f"..%2f{OUTSIDE_MODEL}",
    f"%2e%2e%2f{OUTSIDE_MODEL}",
    f"..%5c{OUTSIDE_MODEL}",
    "%2fetc%2fpasswd",
    "%2Fetc",
    ".hidden",
    "digits-cnn%00",
    "digits-cnn%0a",
    "-rf",
    "a" * 200,
]
RAW_TRAVERSALS = [f"../{OUTSIDE_MODEL}", f"../../{OUTSIDE_MODEL}", "/etc/passwd", f"./../{OUTSIDE_MODEL}"]


def _requests(name: str) -> list[tuple[str, str, dict[str, object] | None]]:
    """Every route that takes a model name, each with a body it would accept for a real model."""
    return [
        ("POST", f"/v2/repository/models/{name}/load", {}),
        ("POST", f"/v2/repository/models/{name}/unload", {}),
        ("POST", f"/v2/models/{name}/infer", INFER_DIGIT),
        ("GET", f"/v2/models/{name}", None),
        ("GET", f"/v2/models/{name}/ready", None),
        ("POST", f"/v1/models/{name}:predict", PREDICT_DIGIT),
        ("POST", f"/v2/models/{name}/generate", {"text_input": "O", "max_tokens": 1}),
    ]


@pytest.mark.parametrize("name", TRAVERSALS + RAW_TRAVERSALS)
def test_model_names_cannot_reach_outside_the_repository(server: Server, name: str) -> None:
    """Sent byte for byte (no client normalizes the path): 404, and the model beside the repository
    is never loaded."""
    for method, path, body in _requests(name):
        raw = orjson.dumps(body) if body is not None else b""
        headers = {**keys.bearer(keys.ADMIN_KEYS[0]), "Content-Length": str(len(raw))}
        response = exchange(server.port, method, path, headers, [raw])
        assert response.status == 404, (method, path, response.status, response.body)
        assert str(server.repository.parent) not in response.body.decode(errors="replace")
    index = httpx.post(f"{server.url}/v2/repository/index", timeout=10).json()
    assert OUTSIDE_MODEL not in {row["name"] for row in index}


@pytest.mark.parametrize("name", ["../outside-model", "/etc/passwd", "..", "tiny-gpt/../tiny-gpt", "%2e%2e"])
def test_openai_model_names_cannot_reach_outside_the_repository(server: Server, name: str) -> None:
    response = httpx.post(
        f"{server.url}/v1/completions", json={"model": name, "prompt": "O", "max_tokens": 1}, timeout=10
    )
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "model_not_found"
    assert str(server.repository) not in response.text


def test_cors_is_off_unless_configured(server: Server) -> None:
    preflight = httpx.options(
        f"{server.url}/v2/models/digits-cnn/infer",
        headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert "access-control-allow-origin" not in preflight.headers
    plain = httpx.get(f"{server.url}/v2", headers={"Origin": ALLOWED_ORIGIN}, timeout=10)
    assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("guarded")
    root = base / "models"
    root.mkdir()
    copy_bundled(root, "digits-cnn", "tiny-gpt")
    env = {
        **keys.server_env(),
        "NNSERVE_AUTH_INFERENCE": "true",
        "NNSERVE_CORS_ORIGINS": f"{ALLOWED_ORIGIN},https://other.example",
    }
    with serving(root.resolve(), base / "server.log", env=env) as srv:
        yield srv


GUARDED = [
    ("POST", "/v2/models/digits-cnn/infer", INFER_DIGIT),
    ("POST", "/v1/models/digits-cnn:predict", PREDICT_DIGIT),
    ("GET", "/v2/models/digits-cnn", None),
    ("GET", "/v1/models/digits-cnn", None),
    ("POST", "/v2/models/tiny-gpt/generate", {"text_input": "O", "max_tokens": 2}),
    ("POST", "/v2/models/tiny-gpt/generate_stream", {"text_input": "O", "max_tokens": 2}),
    ("POST", "/v2/repository/index", None),
]


@pytest.mark.parametrize(("method", "path", "body"), GUARDED, ids=[p for _, p, _ in GUARDED])
def test_inference_needs_a_key_when_configured(guarded_server: Server, method: str, path: str, body: object) -> None:
    with guarded_server.client() as client:
        refused = client.request(method, path, json=body)
        assert refused.status_code == 401, refused.text
        assert refused.headers["www-authenticate"].startswith("Bearer")
        for key in (keys.INFERENCE_KEY, keys.ADMIN_KEYS[0]):
            allowed = client.request(method, path, json=body, headers=keys.bearer(key))
            assert allowed.status_code == 200, allowed.text


@pytest.mark.parametrize("path", ["/v2/health/live", "/v2/health/ready", "/metrics", "/v2", "/openapi.json"])
def test_probes_metrics_and_docs_stay_open(guarded_server: Server, path: str) -> None:
    assert httpx.get(f"{guarded_server.url}{path}", timeout=10).status_code == 200


def test_openai_client_authenticates_with_its_api_key(guarded_server: Server) -> None:
    good = openai.OpenAI(base_url=f"{guarded_server.url}/v1", api_key=keys.INFERENCE_KEY, max_retries=0)
    completion = good.completions.create(model="tiny-gpt", prompt="ROMEO:", max_tokens=3, seed=1)
    assert completion.choices[0].text
    bad = openai.OpenAI(base_url=f"{guarded_server.url}/v1", api_key="not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        bad.completions.create(model="tiny-gpt", prompt="ROMEO:", max_tokens=3)
    assert raised.value.status_code == 401
    assert raised.value.code == "invalid_api_key"


def test_cors_answers_configured_origins_only(guarded_server: Server) -> None:
    def preflight(origin: str) -> httpx.Response:
        return httpx.options(
            f"{guarded_server.url}/v2/models/digits-cnn/infer",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
            timeout=10,
        )

    allowed = preflight(ALLOWED_ORIGIN)
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in preflight("https://evil.example").headers
    answer = httpx.post(
        f"{guarded_server.url}/v2/models/digits-cnn/infer",
        json=INFER_DIGIT,
        headers={"Origin": ALLOWED_ORIGIN, **keys.bearer(keys.INFERENCE_KEY)},
        timeout=10,
    )
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


def test_outside_model_exists_so_the_traversal_tests_mean_something(repository: Path) -> None:
    assert (repository.parent / OUTSIDE_MODEL / "1" / "model.onnx").is_file()
