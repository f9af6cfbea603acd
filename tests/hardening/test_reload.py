"""Hot reload under load: new versions swap in while clients hammer the model and no request fails;
an unload lets the requests in flight finish; and load/unload cycles give their memory back
(Triton's L0_model_queue and L0_memory_growth, in spirit)."""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from . import keys
from .payloads import INFER_DIGIT, PREDICT_DIGIT
from .repository import copy_bundled, slow_request, write_slow
from .server import Server, serving, wait_for

ADMIN = keys.bearer(keys.ADMIN_KEYS[0])
CLIENTS = 6
NEW_VERSIONS = 5
CYCLES, WARM_UP = 20, 5
MAX_GROWTH_BYTES = 30 * 1024 * 1024
MAX_GROWTH_FRACTION = 0.15


@pytest.fixture(scope="module")
def reload_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("reload")
    root = base / "models"
    root.mkdir()
    copy_bundled(root, "digits-cnn", "text-lstm", "tiny-gpt")
    write_slow(root)
    with serving(root.resolve(), base / "server.log", env=keys.server_env()) as srv:
        yield srv


def test_new_versions_swap_in_under_load_without_a_failed_request(reload_server: Server) -> None:
    server = reload_server
    stop = threading.Event()
    statuses: Counter[int] = Counter()
    versions: Counter[str] = Counter()
    lock = threading.Lock()
    failures: list[str] = []

    def hammer(index: int) -> None:
        with server.client() as client:
            while not stop.is_set():
                if index % 2:
                    response = client.post("/v1/models/digits-cnn:predict", json=PREDICT_DIGIT)
                else:
                    response = client.post("/v2/models/digits-cnn/infer", json=INFER_DIGIT)
                with lock:
                    statuses[response.status_code] += 1
                    if response.status_code == 200:
                        versions[response.json()["model_version"]] += 1
                    else:
                        failures.append(response.text)

    model_dir = server.repository / "digits-cnn"
    with ThreadPoolExecutor(CLIENTS) as pool, server.client() as admin:
        workers = [pool.submit(hammer, i) for i in range(CLIENTS)]
        try:
            for version in range(2, 2 + NEW_VERSIONS):
                before = sum(versions.values())
                wait_for("requests on the served version", lambda b=before: sum(versions.values()) > b + 20)
                shutil.copytree(model_dir / "1", model_dir / str(version))
                loaded = admin.post("/v2/repository/models/digits-cnn/load", headers=ADMIN)
                assert loaded.status_code == 200, loaded.text
                assert admin.get("/v2/models/digits-cnn").json()["versions"] == [str(version)]
            before = sum(versions.values())
            wait_for("requests on the last version", lambda: sum(versions.values()) > before + 20)
        finally:
            stop.set()
        for worker in workers:
            worker.result()
    assert not failures, failures[:5]
    assert set(statuses) == {200} and statuses[200] > 100, statuses
    assert len(versions) >= 3, f"the load never overlapped a swap: {versions}"


def test_unload_lets_requests_in_flight_finish(reload_server: Server) -> None:
    server = reload_server
    with ThreadPoolExecutor(4) as pool, server.client() as admin:
        running = [
            pool.submit(httpx.post, f"{server.url}/v2/models/slow/infer", json=slow_request(150_000), timeout=60)
            for _ in range(4)
        ]
        wait_for("4 slow requests in flight", lambda: server.metric("nnserve_requests_in_flight") >= 5)
        unloaded = admin.post("/v2/repository/models/slow/unload", headers=ADMIN)
        assert unloaded.status_code == 200, unloaded.text
        after = admin.post("/v2/models/slow/infer", json=slow_request(1))
        assert after.status_code == 503 and after.headers["retry-after"], after.text
        answers = [f.result() for f in running]
        assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
        assert admin.post("/v2/repository/models/slow/load", headers=ADMIN).status_code == 200
        assert admin.post("/v2/models/slow/infer", json=slow_request(1)).status_code == 200


def _cycle(client: httpx.Client) -> None:
    """Load, use and unload a text classifier and the generator (its engine and KV caches included)."""
    for name in ("text-lstm", "tiny-gpt"):
        assert client.post(f"/v2/repository/models/{name}/load", headers=ADMIN).status_code == 200
    for _ in range(5):
        text = client.post("/v1/models/text-lstm:predict", json={"instances": ["free cash prize, txt now"] * 8})
        assert text.status_code == 200, text.text
    generated = client.post("/v2/models/tiny-gpt/generate", json={"text_input": "ROMEO:", "max_tokens": 32})
    assert generated.status_code == 200, generated.text
    for name in ("text-lstm", "tiny-gpt"):
        assert client.post(f"/v2/repository/models/{name}/unload", headers=ADMIN).status_code == 200


def test_memory_is_given_back_over_20_load_unload_cycles(reload_server: Server) -> None:
    server = reload_server
    samples = []
    with server.client() as client:
        for _ in range(CYCLES):
            _cycle(client)
            samples.append(server.rss_bytes())
        for name in ("text-lstm", "tiny-gpt"):
            assert client.post(f"/v2/repository/models/{name}/load", headers=ADMIN).status_code == 200
    warm = samples[WARM_UP - 1]
    growth = max(samples[WARM_UP:]) - warm
    mib = [round(s / 2**20, 1) for s in samples]
    assert growth < MAX_GROWTH_BYTES and growth < MAX_GROWTH_FRACTION * warm, f"RSS by cycle (MiB): {mib}"
