"""What the statistics extension counts, seen from outside: a request whose client hangs up while its
batch runs is a failure, not a success."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from .repository import slow_request, write_slow
from .server import Server, serving, wait_for


@pytest.fixture(scope="module")
def accounting_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("accounting")
    root = base / "models"
    root.mkdir()
    write_slow(root)
    with serving(root.resolve(), base / "server.log") as srv:
        yield srv


def test_request_cancelled_while_its_batch_runs_counts_as_a_failure(accounting_server: Server) -> None:
    server = accounting_server
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.url}/v2/models/slow/infer", json=slow_request(1_500_000), timeout=0.5)
    wait_for("the abandoned batch to finish", lambda: server.statistics("slow")["execution_count"] == 1, 60)
    stats = server.statistics("slow")["inference_stats"]
    assert stats["success"]["count"] == 0, stats
    assert stats["fail"]["count"] == 1, stats
