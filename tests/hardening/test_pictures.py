"""Pictures that cannot be used are a 400 naming the instance, whatever fails inside Pillow, and one
request's pictures are bounded together (issue 16, items 15 and 16).

Decoding goes through one function (`service.tasks.image.decode_picture`); these requests reach it by every
route that decodes pictures: `:predict` with base64 JSON and with a multipart upload, and the playground's
preprocess route. A second server, with a per-request pixel budget large enough for 60 big pictures,
shows that decoding stops between pictures when the deadline passes or the client hangs up.
"""

from __future__ import annotations

import base64
import io
import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from .repository import copy_bundled
from .server import Server, serving

MODEL = "digits-cnn"
PREDICT = f"/v1/models/{MODEL}:predict"
PREPROCESS = f"/ui/models/{MODEL}/preprocess"
CORRUPT_AVIF = base64.b64decode(
    "AAAAIGZ0eXBhdmlmAAAAAGF2aWZtaWYxbWlhZk1BMUIAAADrbWV0YQAAAAAAAAAhaGRscgAAAAAAAAAAcGljdAAAAAAAAAAAAAAAAAAAAAAO"
    "cGl0bQAAAAAAAQAAAB5pbG9jAAAAAEQAAAEAAQAAAAEAAAETAAAAJQAAAChpaW5mAAAAAAABAAAAGmluZmUCAAAAAAEAAGF2MDFDb2xvcgAA"
    "AABqaXBycAAAAEtpcGNvAAAAFGlzcGUAAAAAAAAACAAAAAgAAAAQcGl4aQAAAADOCAgIAAAADGF2MUOBAAwAAAAAE2NvbHJuY2x4AAEADQAG"
    "gAAAABdpcG1hAAAAAAAAAAEAAQQBAoMEAAAALW1kYXQSAAoIGAi/aICGg0IyFxTHh4ZlAgggnlAAAAD2b2M9SPG6ZHSs"
)
"""An 8x8 AVIF with one byte of its AV1 data changed: the decoder raises RuntimeError ("Not implemented")."""
BIG_SIDE = 4096
"""4096 x 4096: the largest picture NNSERVE_MAX_IMAGE_PIXELS allows by default; about 0.1 s to decode."""


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _corrupt_dds() -> bytes:
    """A DDS whose pixel format names a FourCC no decoder knows: Pillow raises NotImplementedError."""
    dds = bytearray(_encoded(Image.new("RGB", (8, 8), (255, 255, 255)), "DDS"))
    dds[80:84] = struct.pack("<I", 0x4)  # DDPF_FOURCC
    dds[84:88] = b"ZZZZ"
    return bytes(dds)


def _digit(mode: str, fmt: str) -> bytes:
    """A dark square on a bright background, in `mode`."""
    image = Image.new("L", (32, 32), 255)
    image.paste(0, (10, 6, 22, 26))
    if mode == "LAB":
        neutral = Image.new("L", image.size, 128)
        return _encoded(Image.merge("LAB", (image, neutral, neutral)), fmt)
    if mode == "I;16":
        return _encoded(image.point(lambda v: v * 257, "I").convert("I;16"), fmt)
    return _encoded(image.convert(mode), fmt)


def _big_picture() -> bytes:
    image = Image.new("L", (BIG_SIDE, BIG_SIDE), 255)
    image.paste(0, (1000, 1000, 3000, 3000))
    return _encoded(image, "PNG")


def _b64_body(pictures: list[bytes]) -> dict[str, object]:
    return {"instances": [{"b64": base64.b64encode(raw).decode()} for raw in pictures]}


def _post_all_ways(client: httpx.Client, raw: bytes) -> dict[str, httpx.Response]:
    """The picture as the second instance, by each route that decodes pictures."""
    good = _digit("L", "PNG")
    files = [("file", ("good.png", good)), ("file", ("bad.img", raw))]
    return {
        "b64": client.post(PREDICT, json=_b64_body([good, raw])),
        "multipart": client.post(PREDICT, files=files),
        "preprocess": client.post(PREPROCESS, json=_b64_body([good, raw])),
    }


NAMES = {"b64": "instances[1]", "multipart": "files[1] 'bad.img'", "preprocess": "instances[1]"}


@pytest.mark.parametrize(("name", "raw"), [("avif", CORRUPT_AVIF), ("dds", _corrupt_dds())])
def test_picture_that_a_decoder_fails_on_is_400_naming_the_instance(server: Server, name: str, raw: bytes) -> None:
    with server.client() as client:
        for way, answer in _post_all_ways(client, raw).items():
            assert answer.status_code == 400, (name, way, answer.text)
            assert answer.json()["error"].startswith(f"{NAMES[way]}: cannot decode image"), (way, answer.text)


@pytest.mark.parametrize("mode", ["LAB", "CMYK", "I;16", "F"])
def test_picture_in_any_mode_converts_like_its_grayscale(server: Server, mode: str) -> None:
    fmt = "PNG" if mode == "I;16" else "TIFF"
    with server.client() as client:
        expected = client.post(PREPROCESS, json=_b64_body([_digit("L", "PNG")])).json()["inputs"][0]["data"]
        for way, answer in _post_all_ways(client, _digit(mode, fmt)).items():
            assert answer.status_code == 200, (mode, way, answer.text)
        data = client.post(PREPROCESS, json=_b64_body([_digit(mode, fmt)])).json()["inputs"][0]["data"]
    if mode == "CMYK":  # Pillow's CMYK -> RGB is naive (no profile): the same square, as bright-on-dark ink
        assert max(abs(a - b) for a, b in zip(data, expected, strict=True)) <= 1.0
    else:
        assert max(abs(a - b) for a, b in zip(data, expected, strict=True)) < 0.02


def test_request_whose_pictures_exceed_the_pixel_budget_is_413_naming_it(server: Server) -> None:
    pictures = [_big_picture()] * 5  # 5 x 16.8 M pixels: each under the picture limit, together over 64 Mi
    started = time.monotonic()
    with server.client() as client:
        answer = client.post(PREDICT, json=_b64_body(pictures))
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"] == (
        "instances[4]: the request's pictures up to this one hold 83886080 pixels, more than "
        "max_request_pixels (67108864) for one request"
    )
    assert time.monotonic() - started < 2.0  # refused from the headers, before decoding any


@pytest.fixture(scope="module")
def roomy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose pixel budget lets 60 big pictures through: only deadlines and hang-ups stop them."""
    root = tmp_path_factory.mktemp("pictures") / "models"
    root.mkdir()
    copy_bundled(root, MODEL)
    env = {"NNSERVE_MAX_REQUEST_PIXELS": str(60 * BIG_SIDE * BIG_SIDE), "NNSERVE_INLINE_INFERENCE": "off"}
    with serving(root, tmp_path_factory.mktemp("logs") / "server.log", env=env) as srv:
        yield srv


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_decoding_stops_at_the_deadline(roomy: Server) -> None:
    body = _b64_body([_big_picture()] * 60)  # about 6 s of decoding
    started = time.monotonic()
    with roomy.client() as client:
        answer = client.post(PREDICT, json=body, headers={"X-Request-Timeout-Ms": "300"})
    assert answer.status_code == 504, answer.text
    assert "before decoding instances[" in answer.json()["error"]
    assert time.monotonic() - started < 4.0


def test_decoding_stops_when_the_client_hangs_up(roomy: Server) -> None:
    body = _b64_body([_big_picture()] * 60)
    with roomy.client() as client, pytest.raises(httpx.ReadTimeout):
        client.post(PREDICT, json=body, timeout=httpx.Timeout(30.0, read=0.5))
    time.sleep(0.5)  # the server notices the disconnect and the picture being decoded finishes
    before = _cpu_seconds(roomy.process.pid)
    time.sleep(1.5)  # measured window: an idle server uses almost no CPU
    assert _cpu_seconds(roomy.process.pid) - before < 0.4
