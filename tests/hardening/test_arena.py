"""ONNX Runtime's CPU arena gives back what one huge request made it take (NNSERVE_CPU_ARENA=shrink, the
default): the process does not stay hundreds of megabytes larger after it."""

from __future__ import annotations

from pathlib import Path

from .repository import write_outer
from .server import serving

N = 8192
"""Values in the big request: a 256 MiB intermediate tensor."""
MAX_KEPT_BYTES = 64 * 1024 * 1024


def _request(n: int) -> dict[str, object]:
    return {"inputs": [{"name": "x", "shape": [1, n], "datatype": "FP32", "data": [0.001] * n}]}


def test_one_huge_request_leaves_no_arena_growth_behind(tmp_path: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    write_outer(root)
    with serving(root.resolve(), tmp_path / "server.log") as server, server.client() as client:
        for _ in range(5):
            assert client.post("/v2/models/outer/infer", json=_request(64)).status_code == 200
        before = server.rss_bytes()
        big = client.post("/v2/models/outer/infer", json=_request(N), timeout=60)
        assert big.status_code == 200, big.text
        assert client.post("/v2/models/outer/infer", json=_request(64)).status_code == 200
        kept = server.rss_bytes() - before
        assert kept < MAX_KEPT_BYTES, f"{kept / 2**20:.0f} MiB kept after one request of {N} values"
