"""`--inline-inference on` (what `auto` picks on a one-core server): batches and generation steps run on the
event loop, and every answer is the one the worker thread gives."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from testkit.server import Server, running_server

from service.api.examples import INFER_REQUEST

from .generation_client import GENERATE, PROMPT, SAMPLED

PROMPTS = [PROMPT, "JULIET:\n", "First Citizen:\n", "KING:\n"]


@pytest.fixture(scope="module")
def inline_server(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A second server on the session server's repository, running models on its event loop."""
    repository = Path(server.command[server.command.index("--repository") + 1])
    log = tmp_path_factory.mktemp("inline-logs") / "server.log"
    with running_server(repository, log, args=["--inline-inference", "on"], require_ready=True) as srv:
        yield srv


def _answers(server: Server) -> list[object]:
    """Four generations at once (greedy and sampled with a seed) and one batch-able infer per prompt."""

    def one(prompt: str) -> object:
        with server.client() as http:
            greedy = http.post(GENERATE, json={"text_input": prompt, "max_tokens": 24, "temperature": 0})
            sampled = http.post(GENERATE, json={"text_input": prompt, **SAMPLED})
            infer = http.post("/v2/models/digits-cnn/infer", json=INFER_REQUEST)
        assert greedy.status_code == sampled.status_code == infer.status_code == 200
        return greedy.json()["text_output"], sampled.json()["text_output"], infer.json()["outputs"]

    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        return list(pool.map(one, PROMPTS))


def _threads(server: Server) -> int:
    return len(list(Path(f"/proc/{server.process.pid}/task").iterdir()))


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through Linux's /proc")
def test_inline_runs_answer_as_the_worker_thread_does(server: Server, inline_server: Server) -> None:
    assert _answers(inline_server) == _answers(server)
    # The threaded server started a worker per model version it ran (digits-cnn, tiny-gpt); this one none.
    assert _threads(inline_server) <= _threads(server) - 2
