"""Request bodies compressed with `Content-Encoding: gzip|deflate` (tritonclient's opt-in compression)."""

from __future__ import annotations

import zlib

from service.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The plain body; inflating stops past `limit` bytes, so a small bomb cannot fill the memory."""
    if encoding is None or encoding in ("", "identity"):
        return body
    wbits = _WBITS.get(encoding.strip().lower())
    if wbits is None:
        raise UnsupportedMediaType(f"Content-Encoding: {encoding!r} is not supported (gzip, deflate, identity)")
    inflater = zlib.decompressobj(wbits)
    try:
        plain = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"Content-Encoding: body is not valid {encoding}: {exc}") from None
    if len(plain) > limit:
        raise PayloadTooLarge(f"body: more than max_request_bytes ({limit}) once decompressed")
    if not inflater.eof:
        raise InvalidInput(f"Content-Encoding: {encoding} body is truncated")
    return plain
