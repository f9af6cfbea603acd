"""Fault isolation: a model that cannot load, or whose session raises at run time, fails only its own
requests; a failed run is a 500 whose error id is in the log; the process never exits over one model."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from . import keys
from .payloads import INFER_DIGIT
from .repository import BUNDLED, copy_bundled, write_broken
from .server import Server, serving

ADMIN = keys.bearer(keys.ADMIN_KEYS[0])


def _width(values: list[float]) -> dict[str, object]:
    return {"inputs": [{"name": "x", "shape": [1, len(values)], "datatype": "FP32", "data": values}]}


def _index(value: int) -> dict[str, object]:
    return {"inputs": [{"name": "index", "shape": [1, 1], "datatype": "INT64", "data": [value]}]}


def test_models_that_cannot_load_fail_only_their_own_requests(server: Server) -> None:
    with server.client() as client:
        for name, file_hint in (("broken", "broken/1/model.onnx"), ("missing", "missing/1")):
            response = client.post(f"/v2/models/{name}/infer", json=_width([1.0, 2.0, 3.0]))
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"]
            assert file_hint in response.json()["error"]
            assert str(server.repository) not in response.text
        assert client.post("/v2/models/digits-cnn/infer", json=INFER_DIGIT).status_code == 200
        assert client.post("/v2/models/faulty/infer", json=_width([1.0, 2.0, 3.0])).status_code == 200
    assert server.process.poll() is None


def test_index_and_readiness_name_each_broken_model_with_a_relative_reason(server: Server) -> None:
    with server.client() as client:
        index = client.post("/v2/repository/index", headers=ADMIN)
        ready = client.get("/v2/health/ready")
    reasons = {row["name"]: row["reason"] for row in index.json() if row["state"] == "UNAVAILABLE"}
    assert set(reasons) == {"broken", "missing"}
    assert "broken/1/model.onnx" in reasons["broken"]
    assert ready.status_code == 503
    assert set(ready.json()["models"]) == {"broken", "missing"}
    for text in (index.text, ready.text):
        assert str(server.repository) not in text, text
        assert str(server.repository.parent) not in text, text


def test_session_failing_at_run_time_answers_500_with_an_error_id_in_the_log(server: Server) -> None:
    with server.client() as client:
        failed = client.post("/v2/models/faulty/infer", json=_width([1.0, 2.0, 3.0, 4.0]))
        assert failed.status_code == 500, failed.text
        message = failed.json()["error"]
        match = re.search(r"error id ([0-9a-f]+)", message)
        assert match, message
        assert "Traceback" not in failed.text and "onnxruntime_src" not in failed.text
        after = client.post("/v2/models/faulty/infer", json=_width([1.0, 2.0, 3.0]))
        assert after.status_code == 200, after.text
        assert client.post("/v2/models/digits-cnn/infer", json=INFER_DIGIT).status_code == 200
    logged = [e for e in server.log_events() if e.get("error_id") == match.group(1)]
    assert logged, f"error id {match.group(1)} not in the log"
    assert any("Reshape" in str(e.get("exception", "")) for e in logged)
    assert server.process.poll() is None


def test_bad_value_in_a_batch_fails_only_its_own_request(server: Server) -> None:
    """`picky` waits 50 ms to batch: the bad index shares a batch with good ones, which must still answer."""
    with ThreadPoolExecutor(8) as pool, server.client() as client:
        futures = [pool.submit(client.post, "/v2/models/picky/infer", json=_index(i % 4)) for i in range(7)]
        bad = pool.submit(client.post, "/v2/models/picky/infer", json=_index(9))
        good = [f.result() for f in futures]
        refused = bad.result()
    assert [r.status_code for r in good] == [200] * 7, [r.text for r in good]
    for i, response in enumerate(good):
        assert response.json()["outputs"][0]["data"] == [3.0 * (i % 4), 3.0 * (i % 4) + 1, 3.0 * (i % 4) + 2]
    assert refused.status_code == 400, refused.text
    assert "index" in refused.json()["error"]
    assert "onnxruntime_src" not in refused.text


@pytest.fixture
def readiness_server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "models"
    root.mkdir()
    copy_bundled(root, "digits-cnn")
    write_broken(root)
    with serving(root.resolve(), tmp_path / "server.log", env=keys.server_env()) as srv:
        yield srv


def test_readiness_follows_broken_unloaded_and_repaired_models(readiness_server: Server) -> None:
    server = readiness_server
    with server.client() as client:
        ready = client.get("/v2/health/ready")
        assert ready.status_code == 503 and set(ready.json()["models"]) == {"broken"}, ready.text
        assert client.get("/v2/models/digits-cnn/ready").status_code == 200
        assert client.get("/v2/models/broken/ready").status_code == 503

        assert client.post("/v2/repository/models/broken/unload", headers=ADMIN).status_code == 200
        assert client.get("/v2/health/ready").status_code == 200, "an unloaded model does not count"

        reload = client.post("/v2/repository/models/broken/load", headers=ADMIN)
        assert reload.status_code == 400 and "broken/1/model.onnx" in reload.json()["error"], reload.text
        assert str(server.repository) not in reload.text
        assert client.get("/v2/health/ready").status_code == 503, "a model asked for and broken counts again"

        shutil.copy(BUNDLED / "digits-cnn" / "1" / "model.onnx", server.repository / "broken" / "1" / "model.onnx")
        (server.repository / "broken" / "config.yaml").write_text(
            (BUNDLED / "digits-cnn" / "config.yaml").read_text().replace("name: digits-cnn", "name: broken")
        )
        assert client.post("/v2/repository/models/broken/load", headers=ADMIN).status_code == 200
        assert client.get("/v2/health/ready").status_code == 200
        answer = client.post("/v2/models/broken/infer", json=INFER_DIGIT)
        assert answer.status_code == 200, answer.text
    assert server.process.poll() is None


def test_process_survives_every_fault_in_this_module(server: Server) -> None:
    """Last in the module: after broken loads and failed runs, the same process still answers."""
    assert server.process.poll() is None
    assert httpx.get(f"{server.url}/v2/health/live", timeout=5).status_code == 200
