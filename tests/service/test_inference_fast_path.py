"""The v2 inference fast path: which requests it answers itself, and that they are answered exactly as
the FastAPI route answers them (compressed bodies still take the route)."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from starlette.types import Receive, Scope, Send
from testkit.server import Server

from service.api.fastpath import InferenceFastPath
from service.repository.registry import ModelRepository
from service.settings import Settings

pytestmark = pytest.mark.anyio
MODEL = "digits-linear"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FastAPIStandIn:
    """Where the fast path hands over what it does not answer; records what it was given."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.seen.append((scope["method"], scope["path"]))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"handed over"})


@pytest.fixture
async def fast_path(repository: Path) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPIStandIn]]:
    settings = Settings(repository=repository)
    models = ModelRepository(settings)
    await models.load_all()
    behind = FastAPIStandIn()
    app = InferenceFastPath(behind, repository=models, settings=settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client, behind
    models.close()


def _body(rows: int = 1, **request: object) -> bytes:
    pixels = np.random.default_rng(rows).uniform(0, 16, (rows, 1, 8, 8)).round(1)
    tensor = {"name": "pixels", "shape": list(pixels.shape), "datatype": "FP32", "data": pixels.ravel().tolist()}
    return json.dumps({"inputs": [tensor], **request}).encode()


async def test_infer_routes_are_answered_without_fastapi(fast_path: tuple[httpx.AsyncClient, FastAPIStandIn]) -> None:
    client, behind = fast_path
    plain = await client.post(f"/v2/models/{MODEL}/infer", content=_body(3, id="a-1"))
    versioned = await client.post(f"/v2/models/{MODEL}/versions/1/infer", content=_body(3, id="a-1"))
    assert behind.seen == []
    assert plain.status_code == 200 and plain.headers["content-type"] == "application/json"
    answer = plain.json()
    assert (answer["model_name"], answer["model_version"], answer["id"]) == (MODEL, "1", "a-1")
    assert answer["outputs"][0]["shape"] == [3, 10]
    assert versioned.content == plain.content


async def test_binary_outputs_carry_the_json_length(fast_path: tuple[httpx.AsyncClient, FastAPIStandIn]) -> None:
    client, _ = fast_path
    response = await client.post(f"/v2/models/{MODEL}/infer", content=_body(2, parameters={"binary_data_output": True}))
    length = int(response.headers["inference-header-content-length"])
    assert response.headers["content-type"] == "application/octet-stream"
    head = json.loads(response.content[:length])
    assert len(response.content) - length == head["outputs"][0]["parameters"]["binary_data_size"] == 2 * 10 * 4


@pytest.mark.parametrize(
    ("path", "status", "fragment"),
    [
        (f"/v2/models/{MODEL}/versions/x/infer", 400, "version: expected a number"),
        (f"/v2/models/{MODEL}/versions/9/infer", 404, "version 9"),
        ("/v2/models/no-such-model/infer", 404, "no-such-model"),
    ],
)
async def test_errors_are_json_naming_the_field(
    fast_path: tuple[httpx.AsyncClient, FastAPIStandIn], path: str, status: int, fragment: str
) -> None:
    client, behind = fast_path
    response = await client.post(path, content=_body())
    assert response.status_code == status and fragment in response.json()["error"]
    bad = await client.post(f"/v2/models/{MODEL}/infer", content=b'{"inputs": [{"name": "pixels"}]}')
    assert bad.status_code == 400 and "inputs.0.shape" in bad.json()["error"]
    assert behind.seen == []


async def test_everything_else_is_handed_to_fastapi(fast_path: tuple[httpx.AsyncClient, FastAPIStandIn]) -> None:
    client, behind = fast_path
    compressed = gzip.compress(_body())
    await client.post(f"/v2/models/{MODEL}/infer", content=compressed, headers={"Content-Encoding": "gzip"})
    await client.get(f"/v2/models/{MODEL}/infer")
    await client.post(f"/v2/models/{MODEL}/infer/more", content=_body())
    await client.get(f"/v2/models/{MODEL}")
    assert behind.seen == [
        ("POST", f"/v2/models/{MODEL}/infer"),
        ("GET", f"/v2/models/{MODEL}/infer"),
        ("POST", f"/v2/models/{MODEL}/infer/more"),
        ("GET", f"/v2/models/{MODEL}"),
    ]


def test_fast_path_and_route_answer_alike_on_a_server(server: Server) -> None:
    """Through the whole app: a plain body takes the fast path, a gzip one the FastAPI route; same answer,
    both counted under the route's name, both with a request ID."""
    body = _body(4, id="same")
    before = server.metric("nnserve_requests_total", model=MODEL, version="1", endpoint="infer", code="200")
    with server.client() as http:
        fast = http.post(f"/v2/models/{MODEL}/infer", content=body, headers={"X-Request-ID": "fast-1"})
        routed = http.post(
            f"/v2/models/{MODEL}/infer", content=gzip.compress(body), headers={"Content-Encoding": "gzip"}
        )
    assert fast.status_code == routed.status_code == 200
    assert fast.content == routed.content
    assert fast.headers["x-request-id"] == "fast-1" and routed.headers["x-request-id"]
    after = server.metric("nnserve_requests_total", model=MODEL, version="1", endpoint="infer", code="200")
    assert after - before == 2
