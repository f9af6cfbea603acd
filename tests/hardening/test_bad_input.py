"""The bad-input corpus: every limit and every malformed request gets its named 4xx, quickly, and the
server answers a normal request right after (Triton's L0_input_validation and L0_large_payload)."""

from __future__ import annotations

import gzip
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest

from . import keys
from .payloads import (
    INFER_DIGIT,
    PREDICT_DIGIT,
    binary_infer,
    grey_png,
    gzip_bomb,
    infer_pixels,
    png_bomb_b64,
    png_declaring,
)
from .rawhttp import exchange
from .server import Server

QUICK_S = 2.0
"""Every refusal must come within this, however large the request (generous for a loaded CI machine)."""
MEGABYTE_TEXT = "spam " * 200_000
THIRTY_MB = 30 * 1024 * 1024
INFER = "/v2/models/digits-cnn/infer"
PREDICT = "/v1/models/digits-cnn:predict"
TEXT_PREDICT = "/v1/models/text-lstm:predict"
GENERATE = "/v2/models/tiny-gpt/generate"
COMPLETIONS = "/v1/completions"


@dataclass(frozen=True)
class Case:
    id: str
    path: str
    status: int
    words: tuple[str, ...]
    """What the error message must name: the field, the limit."""
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    method: str = "POST"


def _error_text(response: httpx.Response) -> str:
    """The message of `{"error": "..."}`, or of OpenAI's `{"error": {"message": ...}}`."""
    body = response.json()
    assert isinstance(body, dict) and "error" in body, response.text
    error = body["error"]
    if isinstance(error, dict):
        return f"{error.get('param')}: {error['message']}"
    assert isinstance(error, str)
    return error


ADMIN = keys.bearer(keys.ADMIN_KEYS[0])
NON_FINITE = b"\x00\x00\xc0\x7f" + b"\x00" * 252  # one FP32 NaN, then 63 zeros
INFINITE = b"\x00\x00\x80\x7f" + b"\x00" * 252  # +inf

CASES = [
    # limits
    Case("png-bomb-b64", PREDICT, 413, ("instances[0]", "pixels"),
         json={"instances": [{"b64": png_bomb_b64()}]}),
    Case("png-bomb-upload", PREDICT, 413, ("files[0]", "pixels"),
         files=[("file", ("bomb.png", png_declaring(100_000, 100_000), "image/png"))]),
    Case("text-1mb-predict", TEXT_PREDICT, 413, ("instances[0]", "max_text_chars"),
         json={"instances": [MEGABYTE_TEXT]}),
    Case("text-1mb-generate", GENERATE, 413, ("text_input", "max_text_chars"),
         json={"text_input": MEGABYTE_TEXT, "max_tokens": 1}),
    Case("text-1mb-openai", COMPLETIONS, 413, ("prompt", "max_text_chars"),
         json={"model": "tiny-gpt", "prompt": MEGABYTE_TEXT, "max_tokens": 1}),
    Case("too-many-instances", PREDICT, 413, ("instances", "max_instances"),
         json={"instances": [[0] * 64] * 1025}),
    Case("gzip-bomb", TEXT_PREDICT, 413, ("max_request_bytes", "decompressed"), content=gzip_bomb(40_000_000),
         headers={"Content-Encoding": "gzip"}),
    Case("max-tokens-over-limit", GENERATE, 400, ("max_tokens", "256"),
         json={"text_input": "O", "max_tokens": 100_000}),
    Case("openai-max-tokens-over-limit", COMPLETIONS, 400, ("max_tokens",),
         json={"model": "tiny-gpt", "prompt": "O", "max_tokens": 100_000}),
    Case("too-many-files", PREDICT, 413, ("files", "max_instances"),
         files=[("file", ("digit.png", grey_png(), "image/png"))] * 1025),
    Case("compressed-multipart", PREDICT, 415, ("Content-Encoding", "multipart"),
         files=[("file", ("digit.png", grey_png(), "image/png"))], headers={"Content-Encoding": "gzip"}),
    Case("text-1mb-preprocess", "/ui/models/text-lstm/preprocess", 413, ("instances[0]", "max_text_chars"),
         json={"instances": [MEGABYTE_TEXT]}),
    Case("xml-to-preprocess", "/ui/models/digits-cnn/preprocess", 415, ("Content-Type", "application/xml"),
         content=b"<instances/>", headers={"Content-Type": "application/xml"}),
    # v2 tensors
    Case("wrong-datatype", INFER, 400, ("inputs[0] 'pixels'", "datatype", "INT64"),
         json=infer_pixels([0] * 64, datatype="INT64")),
    Case("unknown-datatype", INFER, 400, ("inputs[0] 'pixels'", "FP99"), json=infer_pixels([0] * 64, datatype="FP99")),
    Case("shape-vs-data-length", INFER, 400, ("inputs[0] 'pixels'", "64 values", "63"), json=infer_pixels([0] * 63)),
    Case("ragged", INFER, 400, ("inputs[0] 'pixels'", "ragged"),
         json=infer_pixels([[0] * 8] * 7 + [[0] * 7], shape=[1, 1, 8, 8])),
    Case("negative-dimension", INFER, 400, ("inputs[0] 'pixels'", "negative"),
         json=infer_pixels([0] * 64, shape=[-1, 1, 8, 8])),
    Case("zero-batch", INFER, 400, ("batch",), json=infer_pixels([], shape=[0, 1, 8, 8])),
    Case("huge-shape", INFER, 400, ("inputs[0] 'pixels'",), json=infer_pixels([0], shape=[10**11, 1, 8, 8])),
    Case("overflow-to-infinity", INFER, 400, ("inputs[0] 'pixels'", "finite"), json=infer_pixels([1e39] + [0] * 63)),
    Case("binary-nan", INFER, 400, ("inputs[0] 'pixels'", "finite"), content=binary_infer(NON_FINITE)[0],
         headers={"Inference-Header-Content-Length": binary_infer(NON_FINITE)[1]}),
    Case("binary-infinity", INFER, 400, ("inputs[0] 'pixels'", "finite"), content=binary_infer(INFINITE)[0],
         headers={"Inference-Header-Content-Length": binary_infer(INFINITE)[1]}),
    Case("integer-out-of-range", "/v2/models/text-lstm/infer", 400, ("input_ids", "INT64"),
         json={"inputs": [{"name": "input_ids", "shape": [1, 2], "datatype": "INT64", "data": [10**20, 1]},
                          {"name": "attention_mask", "shape": [1, 2], "datatype": "INT64", "data": [1, 1]}]}),
    Case("unknown-input", INFER, 400, ("inputs[0] 'image'", "pixels"),
         json={"inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [0] * 64}]}),
    Case("unknown-output", INFER, 400, ("outputs[0] 'logits'",), json={**INFER_DIGIT, "outputs": [{"name": "logits"}]}),
    Case("empty-inputs", INFER, 400, ("inputs",), json={"inputs": []}),
    Case("unknown-field", INFER, 400, ("colour",), json={**INFER_DIGIT, "colour": "red"}),
    Case("bad-framing", INFER, 400, ("Inference-Header-Content-Length",), content=orjson.dumps(INFER_DIGIT),
         headers={"Inference-Header-Content-Length": "99999"}),
    Case("negative-timeout-parameter", INFER, 400, ("parameters.timeout",),
         json={**INFER_DIGIT, "parameters": {"timeout": -5}}),
    # :predict
    Case("empty-instances", PREDICT, 400, ("instances",), json={"instances": []}),
    Case("empty-text", TEXT_PREDICT, 400, ("instances[0]",), json={"instances": [""]}),
    Case("text-not-a-string", TEXT_PREDICT, 400, ("instances[0]", "string"), json={"instances": [12]}),
    Case("vector-overflow", "/v1/models/digits-ae:predict", 400, ("instances[0]", "finite"),
         json={"instances": [[1e39] * 64]}),
    Case("undecodable-image", PREDICT, 400, ("instances[0]", "decode"),
         json={"instances": [{"b64": "bm90IGFuIGltYWdl"}]}),
    Case("bad-base64", PREDICT, 400, ("instances[0].b64", "base64"), json={"instances": [{"b64": "***"}]}),
    Case("unknown-parameter", TEXT_PREDICT, 400, ("parameters.colour",),
         json={"instances": ["hi"], "parameters": {"colour": "red"}}),
    Case("bad-top-k", TEXT_PREDICT, 400, ("top_k",), json={"instances": ["hi"], "parameters": {"top_k": 0}}),
    Case("predict-on-tensor-model", "/v1/models/faulty:predict", 400, ("faulty", "infer"), json={"instances": [[1]]}),
    # generation
    Case("empty-prompt", GENERATE, 400, ("text_input",), json={"text_input": ""}),
    Case("unknown-generation-field", GENERATE, 400, ("colour",), json={"text_input": "O", "colour": 1}),
    Case("bad-temperature", GENERATE, 400, ("temperature",), json={"text_input": "O", "temperature": -1}),
    Case("generate-on-classifier", "/v2/models/digits-cnn/generate", 400, ("digits-cnn", "generat"),
         json={"text_input": "O"}),
    Case("openai-unknown-argument", COMPLETIONS, 400, ("colour",),
         json={"model": "tiny-gpt", "prompt": "O", "colour": 1}),
    Case("openai-logprobs", COMPLETIONS, 400, ("logprobs",), json={"model": "tiny-gpt", "prompt": "O", "logprobs": 2}),
    # bodies that are not what the endpoint reads
    Case("json-not-object-infer", INFER, 400, ("body", "object"), content=b"[1, 2]"),
    Case("json-not-object-predict", PREDICT, 400, ("body", "object"), content=b'"instances"'),
    Case("json-not-object-generate", GENERATE, 400, ("body", "object"), content=b"42"),
    Case("json-not-object-openai", COMPLETIONS, 400, ("body", "object"), content=b"[]"),
    Case("json-not-object-load", "/v2/repository/models/digits-cnn/load", 400, ("body", "object"), content=b"[]",
         headers=ADMIN),
    Case("invalid-json", INFER, 400, ("JSON",), content=b'{"inputs": ['),
    Case("empty-body", INFER, 400, ("empty",), content=b""),
    Case("deep-nesting", PREDICT, 400, ("JSON",), content=b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
    Case("not-utf8", TEXT_PREDICT, 400, ("UTF-8",), content=b'{"instances": ["\xff\xfe caf\xe9"]}'),
    Case("lone-surrogate", GENERATE, 400, ("JSON",), content=b'{"text_input": "\\ud800"}'),
    Case("xml-content-type", INFER, 415, ("Content-Type", "application/xml"), content=b"<inputs/>",
         headers={"Content-Type": "application/xml"}),
    Case("multipart-to-infer", INFER, 415, ("Content-Type", "multipart/form-data"),
         files=[("file", ("digit.png", b"PNG", "image/png"))]),
    Case("multipart-to-generate", GENERATE, 415, ("Content-Type",), files=[("file", ("a.txt", b"O", "text/plain"))]),
    Case("csv-to-predict", TEXT_PREDICT, 415, ("Content-Type", "text/csv"), content=b"hi\n",
         headers={"Content-Type": "text/csv"}),
    Case("unsupported-encoding", INFER, 415, ("Content-Encoding", "br"), content=b"xx",
         headers={"Content-Encoding": "br"}),
    Case("gzip-trailing-garbage", INFER, 400, ("Content-Encoding", "trailing"),
         content=gzip.compress(orjson.dumps(INFER_DIGIT)) + b"garbage", headers={"Content-Encoding": "gzip"}),
    Case("deflate-trailing-data", INFER, 400, ("Content-Encoding", "trailing"),
         content=zlib.compress(orjson.dumps(INFER_DIGIT)) * 2, headers={"Content-Encoding": "deflate"}),
    Case("corrupt-gzip", INFER, 400, ("Content-Encoding", "gzip"), content=b"xx", headers={"Content-Encoding": "gzip"}),
    Case("bad-timeout-header", PREDICT, 400, ("X-Request-Timeout-Ms",), json=PREDICT_DIGIT,
         headers={"X-Request-Timeout-Ms": "soon"}),
    # names and routes
    Case("unknown-model", "/v2/models/digits-cnnn/infer", 404, ("digits-cnnn",), json=INFER_DIGIT),
    Case("unknown-version", "/v2/models/digits-cnn/versions/7/infer", 404, ("version 7",), json=INFER_DIGIT),
    Case("non-numeric-version", "/v2/models/digits-cnn/versions/latest/infer", 400, ("version", "latest"),
         json=INFER_DIGIT),
    Case("wrong-method", INFER, 405, ("GET",), method="GET"),
    Case("broken-model", "/v2/models/broken/infer", 503, ("broken",), json=INFER_DIGIT),
]  # fmt: skip


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def _assert_still_serving(client: httpx.Client) -> None:
    response = client.post(PREDICT, json=PREDICT_DIGIT)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["label"] == "0"


def _assert_clean(text: str, server: Server) -> None:
    """No stack trace and no file path of the server's in an answer."""
    assert "Traceback" not in text and 'File "' not in text, text
    assert str(server.repository) not in text and str(server.repository.parent) not in text, text


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_request_gets_named_4xx_quickly(case: Case, client: httpx.Client, server: Server) -> None:
    started = time.perf_counter()
    response = client.request(
        case.method, case.path, json=case.json, content=case.content, headers=case.headers, files=case.files
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == case.status, response.text
    message = _error_text(response)
    for word in case.words:
        assert word in message, f"{word!r} not named in {message!r}"
    assert elapsed < QUICK_S, f"{case.id}: {elapsed:.2f} s"
    _assert_clean(response.text, server)
    _assert_still_serving(client)


def _spaces(total: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    for start in range(0, total, chunk):
        yield b" " * min(chunk, total - start)


def test_30mb_body_with_length_is_refused_before_it_is_sent(server: Server, client: httpx.Client) -> None:
    headers = {"Content-Length": str(THIRTY_MB), "Content-Type": "application/json"}
    response = exchange(server.port, "POST", INFER, headers, _spaces(THIRTY_MB))
    assert response.status == 413, response.body
    assert "max_request_bytes" in response.json()["error"]  # type: ignore[index]
    assert response.seconds < QUICK_S
    assert response.sent < THIRTY_MB // 2, f"the server let {response.sent} bytes in before answering"
    _assert_still_serving(client)


@pytest.mark.parametrize("path", [PREDICT, INFER])  # INFER: the fast path, past FastAPI's routing
def test_30mb_chunked_body_is_refused_while_it_streams(server: Server, client: httpx.Client, path: str) -> None:
    response = exchange(server.port, "POST", path, {"Content-Type": "application/json"}, _spaces(THIRTY_MB),
                        chunked=True)  # fmt: skip
    assert response.status == 413, response.body
    assert "max_request_bytes" in response.json()["error"]  # type: ignore[index]
    assert response.seconds < QUICK_S
    assert response.sent < THIRTY_MB, "the whole body went in before the answer"
    _assert_still_serving(client)


def test_30mb_body_on_a_route_that_reads_no_body_is_refused(server: Server, client: httpx.Client) -> None:
    headers = {"Content-Length": str(THIRTY_MB)}
    response = exchange(server.port, "POST", "/v2/repository/index", headers, _spaces(THIRTY_MB))
    assert response.status == 413, response.body
    _assert_still_serving(client)


def test_multi_member_gzip_body_is_read_whole(client: httpx.Client) -> None:
    """`cat a.gz b.gz`: RFC 1952 reads it as one stream; only the first member was read."""
    raw = orjson.dumps(INFER_DIGIT)
    body = gzip.compress(raw[:40]) + gzip.compress(raw[40:])
    response = client.post(INFER, content=body, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
