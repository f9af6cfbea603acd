"""The request middleware on a tiny inline app: last-resort 500 without a traceback, request ID, 413."""

from __future__ import annotations

import logging

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from service.middleware import RequestContextMiddleware


async def _explode(request: Request) -> PlainTextResponse:
    raise RuntimeError("secret internal detail")


async def _echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(len(await request.body())))


def _client() -> TestClient:
    app = Starlette(routes=[Route("/boom", _explode), Route("/echo", _echo, methods=["POST"])])
    app.add_middleware(RequestContextMiddleware, max_body_bytes=100)
    return TestClient(app, raise_server_exceptions=False)


def test_unhandled_error_is_500_json_without_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR), _client() as client:
        response = client.get("/boom", headers={"X-Request-ID": "r-1"})
    assert response.status_code == 500
    assert response.json() == {"error": "internal server error (request id r-1)"}
    assert response.headers["x-request-id"] == "r-1"
    assert "secret internal detail" not in response.text
    assert any("secret internal detail" in (r.exc_text or "") for r in caplog.records)


def test_declared_body_over_the_limit_is_413_before_reading() -> None:
    with _client() as client:
        small = client.post("/echo", content=b"x" * 100)
        large = client.post("/echo", content=b"x" * 101)
    assert small.text == "100"
    assert large.status_code == 413 and "max_request_bytes (100)" in large.json()["error"]


@pytest.mark.parametrize("access_log", [True, False])
def test_access_log_line_per_request_unless_turned_off(caplog: pytest.LogCaptureFixture, access_log: bool) -> None:
    app = Starlette(routes=[Route("/echo", _echo, methods=["POST"])])
    app.add_middleware(RequestContextMiddleware, max_body_bytes=100, access_log=access_log)
    with caplog.at_level(logging.INFO, logger="service.access"), TestClient(app) as client:
        assert client.post("/echo", content=b"abc").text == "3"
    lines = [r for r in caplog.records if r.name == "service.access" and r.getMessage() == "request"]
    assert [(r.path, r.status) for r in lines] == ([("/echo", 200)] if access_log else [])  # type: ignore[attr-defined]
