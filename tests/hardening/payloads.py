"""Inputs the hardening tests send: good ones to check the server still answers, and crafted bad ones."""

from __future__ import annotations

import base64
import gzip
import struct
import zlib

from service.api.examples import DIGIT_ZERO

PREDICT_DIGIT = {"instances": [DIGIT_ZERO]}
INFER_DIGIT = {
    "inputs": [
        {"name": "pixels", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [v for row in DIGIT_ZERO for v in row]}
    ]
}


def infer_pixels(values: list[float], datatype: str = "FP32", shape: list[int] | None = None) -> dict[str, object]:
    return {"inputs": [{"name": "pixels", "shape": shape or [1, 1, 8, 8], "datatype": datatype, "data": values}]}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A small, valid-looking PNG whose header claims `width` x `height` grey pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


def png_bomb_b64() -> str:
    return base64.b64encode(png_declaring(100_000, 100_000)).decode()


def gzip_bomb(inflated_bytes: int) -> bytes:
    """A gzip body of a few kB that inflates to `inflated_bytes` (a JSON string of spaces)."""
    return gzip.compress(b'{"instances": ["' + b" " * inflated_bytes + b'"]}', compresslevel=9)


def binary_infer(values: bytes, name: str = "pixels", shape: list[int] | None = None) -> tuple[bytes, str]:
    """A binary-tensor v2 body (JSON, then the raw FP32 bytes) and its Inference-Header-Content-Length."""
    import orjson

    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "shape": shape or [1, 1, 8, 8],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(values)},
                }
            ]
        }
    )
    return head + values, str(len(head))


def grey_png(side: int = 8) -> bytes:
    """A valid grey PNG of `side` x `side` pixels."""
    from io import BytesIO

    import numpy as np
    from PIL import Image

    out = BytesIO()
    Image.fromarray(np.full((side, side), 128, dtype=np.uint8)).save(out, format="PNG")
    return out.getvalue()
