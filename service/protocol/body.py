"""Request bodies compressed with `Content-Encoding: gzip|deflate` (tritonclient's opt-in compression)."""

from __future__ import annotations

import zlib

from service.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

_GZIP = 16 + zlib.MAX_WBITS
_WBITS = {"gzip": _GZIP, "deflate": zlib.MAX_WBITS}
GZIP_MAGIC = b"\x1f\x8b"
MAX_GZIP_MEMBERS = 1024
"""A gzip body may be several members one after another (RFC 1952, what `cat a.gz b.gz` makes); more than
this many is not a compressed request but a way to make the server start thousands of inflaters."""


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The plain body; inflating stops past `limit` bytes, so a small bomb cannot fill the memory.

    Every member of a gzip body is inflated (not only the first); bytes after the end of the stream that
    are not another member are refused rather than silently dropped.
    """
    if encoding is None or encoding in ("", "identity"):
        return body
    wbits = _WBITS.get(encoding.strip().lower())
    if wbits is None:
        raise UnsupportedMediaType(f"Content-Encoding: {encoding!r} is not supported (gzip, deflate, identity)")
    parts: list[bytes] = []
    size = 0
    rest = body
    for _ in range(MAX_GZIP_MEMBERS):
        inflater = zlib.decompressobj(wbits)
        try:
            plain = inflater.decompress(rest, limit - size + 1)
        except zlib.error as exc:
            raise InvalidInput(f"Content-Encoding: body is not valid {encoding}: {exc}") from None
        size += len(plain)
        if size > limit:
            raise PayloadTooLarge(f"body: more than max_request_bytes ({limit}) once decompressed")
        if not inflater.eof:
            raise InvalidInput(f"Content-Encoding: {encoding} body is truncated")
        parts.append(plain)
        rest = inflater.unused_data
        if not rest:
            return b"".join(parts)
        if wbits != _GZIP or not rest.startswith(GZIP_MAGIC):
            raise InvalidInput(f"Content-Encoding: {len(rest)} bytes of trailing data after the {encoding} stream")
    raise InvalidInput(f"Content-Encoding: more than {MAX_GZIP_MEMBERS} gzip members in one body")
