"""Values on the wire read strictly: version segments, form fields and framing headers in ASCII digits only
(Python's `int()` takes `²`-like digits, underscores and spaces), deeply nested JSON, and no redirect
that echoes the Host header."""

from __future__ import annotations

import httpx
import orjson
import pytest

from . import keys
from .payloads import INFER_DIGIT, PREDICT_DIGIT, binary_infer, grey_png
from .rawhttp import exchange
from .server import Server

ADMIN = keys.bearer(keys.ADMIN_KEYS[0])
VERSION_ROUTES = [
    ("POST", "/v2/models/digits-cnn/versions/{v}/infer", INFER_DIGIT),
    ("GET", "/v2/models/digits-cnn/versions/{v}", None),
    ("GET", "/v2/models/digits-cnn/versions/{v}/ready", None),
    ("GET", "/v2/models/digits-cnn/versions/{v}/config", None),
    ("GET", "/v2/models/digits-cnn/versions/{v}/stats", None),
    ("POST", "/v1/models/digits-cnn/versions/{v}:predict", PREDICT_DIGIT),
    ("POST", "/v2/models/tiny-gpt/versions/{v}/generate", {"text_input": "O", "max_tokens": 1}),
]
BAD_VERSIONS = {
    "superscript-two": "\u00b2",
    "arabic-indic-one": "\u0661",
    "fullwidth-one": "\uff11",
    "4301-digits": "9" * 4301,
    "underscore": "1_0",
}


@pytest.mark.parametrize("version", BAD_VERSIONS.values(), ids=BAD_VERSIONS.keys())
@pytest.mark.parametrize(("method", "route", "body"), VERSION_ROUTES, ids=[r[1] for r in VERSION_ROUTES])
def test_version_segment_not_in_ascii_digits_gets_400(
    server: Server, method: str, route: str, body: object, version: str
) -> None:
    response = httpx.request(method, f"{server.url}{route.format(v=version)}", json=body, timeout=10)
    assert response.status_code == 400, response.text
    assert "version" in response.json()["error"]
    assert len(response.text) < 500, "a 4,301-digit value is not echoed whole"


@pytest.mark.parametrize("top_k", ["\u00b2", "\u0661", "9" * 4301, "0", "-1"])
def test_multipart_top_k_not_in_ascii_digits_gets_400(server: Server, top_k: str) -> None:
    response = httpx.post(
        f"{server.url}/v1/models/digits-cnn:predict",
        files=[("file", ("digit.png", grey_png(), "image/png"))],
        data={"top_k": top_k},
        timeout=10,
    )
    assert response.status_code == 400, response.text
    assert "top_k" in response.json()["error"]


def test_multipart_top_k_in_ascii_digits_is_honoured(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/v1/models/digits-cnn:predict",
        files=[("file", ("digit.png", grey_png(), "image/png"))],
        data={"top_k": "2"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"][0]["top_k"]) == 2


@pytest.mark.parametrize("framing", ["{a}_{b}", "+{n}", "{n}\u00b2"])
def test_framing_header_not_in_ascii_digits_gets_400(server: Server, framing: str) -> None:
    body, length = binary_infer(b"\x00" * 256)
    value = framing.format(a=length[:-1], b=length[-1], n=length)
    response = exchange(
        server.port, "POST", "/v2/models/digits-cnn/infer",
        {"Inference-Header-Content-Length": value, "Content-Length": str(len(body))}, [body],
    )  # fmt: skip
    assert response.status == 400, response.body
    assert b"Inference-Header-Content-Length" in response.body


NESTED = b"[" * 1000 + b"]" * 1000
DEEP_JSON = [
    ("/v2/models/digits-cnn/infer", b'{"inputs": ' + NESTED + b"}"),
    ("/v2/models/tiny-gpt/generate", b'{"text_input": ' + NESTED + b"}"),
    ("/v1/completions", b'{"model": "tiny-gpt", "prompt": ' + NESTED + b"}"),
    ("/v2/repository/models/digits-cnn/load", b'{"parameters": ' + NESTED + b"}"),
    ("/v1/models/digits-cnn:predict", b'{"instances": [' + NESTED + b"]}"),
]


@pytest.mark.parametrize(("path", "body"), DEEP_JSON, ids=[p for p, _ in DEEP_JSON])
def test_json_nested_a_thousand_levels_gets_400(server: Server, path: str, body: bytes) -> None:
    response = httpx.post(f"{server.url}{path}", content=body, headers=ADMIN, timeout=10)
    assert response.status_code == 400, response.text


def test_trailing_slash_is_404_without_echoing_the_host(server: Server) -> None:
    raw = orjson.dumps(INFER_DIGIT)
    headers = {"Host": "evil.example", "Content-Length": str(len(raw))}
    response = exchange(server.port, "POST", "/v2/models/digits-cnn/infer/", headers, [raw])
    assert response.status == 404, response.body
    assert "location" not in response.headers
    assert b"evil.example" not in response.body
