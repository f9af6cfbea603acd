"""ONNX Runtime's CPU arena gives back what one huge request made it take (NNSERVE_CPU_ARENA=shrink, the
default): the process does not stay hundreds of megabytes larger once the next requests have run."""

from __future__ import annotations

from pathlib import Path

from .repository import write_outer
from .server import serving

N = 8192
"""Values in the big request: a 256 MiB intermediate tensor."""
MAX_KEPT_BYTES = 64 * 1024 * 1024
GIVE_BACK_S = 20.0
"""Small requests keep coming meanwhile; one after the shrink interval (1 s) gives the memory back."""


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

        def given_back() -> bool:
            assert client.post("/v2/models/outer/infer", json=_request(64)).status_code == 200
            return server.rss_bytes() - before < MAX_KEPT_BYTES

        # The next run after NNSERVE_CPU_ARENA_SHRINK_S (1 s) gives the arena's unused regions back.
        server.wait_for(f"the memory of one request of {N} values to be given back", given_back, GIVE_BACK_S)
