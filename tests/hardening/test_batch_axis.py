"""Drop-in models whose axis 0 is not a batch axis (a scalar input, a fixed first dimension, an output
without a batch axis) are served with their exact shapes and never batched, as Triton's `max_batch_size:
0`; statistics count one inference per request. Models with a batch axis everywhere still batch."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .payloads import DIGIT_ZERO, infer_pixels
from .repository import copy_bundled, write_unbatchable
from .server import Server, serving

CONCURRENT = 24
DIGIT_VALUES = [v for row in DIGIT_ZERO for v in row]


@pytest.fixture(scope="module")
def axis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("batch-axis")
    root = base / "models"
    root.mkdir()
    write_unbatchable(root)
    copy_bundled(root, "digits-cnn")
    with serving(root.resolve(), base / "server.log") as srv:
        yield srv


def _tensor(name: str, shape: list[int], data: list[float]) -> dict[str, object]:
    return {"inputs": [{"name": name, "shape": shape, "datatype": "FP32", "data": data}]}


def test_scalar_input_model_serves_exact_shapes(axis_server: Server) -> None:
    answer = httpx.post(f"{axis_server.url}/v2/models/scalar-double/infer", json=_tensor("x", [], [1.5]), timeout=10)
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    assert output["shape"] == [] and output["data"] == [3.0], output


def test_output_without_batch_axis_is_answered_not_a_500(axis_server: Server) -> None:
    answer = httpx.post(
        f"{axis_server.url}/v2/models/total/infer", json=_tensor("x", [2, 3], [1, 2, 3, 4, 5, 6]), timeout=10
    )
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    assert output["shape"] == [] and output["data"] == [21.0], output


def test_fixed_first_dimension_is_never_batched_and_counts_one_inference_per_request(axis_server: Server) -> None:
    def send(i: int) -> httpx.Response:
        return httpx.post(
            f"{axis_server.url}/v2/models/fixed-one/infer", json=_tensor("x", [1, 3], [i, 1, 1]), timeout=30
        )

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(CONCURRENT)))
    assert [a.status_code for a in answers] == [200] * CONCURRENT, [a.text for a in answers if a.status_code != 200]
    for i, answer in enumerate(answers):
        assert answer.json()["outputs"][0]["data"] == [i, i + 1, i + 2]
    stats = axis_server.statistics("fixed-one")
    assert stats["inference_count"] == CONCURRENT and stats["execution_count"] == CONCURRENT, stats
    assert {b["batch_size"] for b in stats["batch_stats"]} == {1}, stats["batch_stats"]
    failed = [
        e
        for e in axis_server.log_events()
        if str(e.get("event", "")).startswith("batch_failed") and str(e.get("batcher", "")).startswith("fixed-one/")
    ]
    assert not failed, failed[:3]


def test_models_with_a_batch_axis_still_batch(axis_server: Server) -> None:
    batch_of_three = infer_pixels(DIGIT_VALUES * 3, shape=[3, 1, 8, 8])
    answer = httpx.post(f"{axis_server.url}/v2/models/digits-cnn/infer", json=batch_of_three, timeout=10)
    assert answer.status_code == 200, answer.text
    assert axis_server.statistics("digits-cnn")["inference_count"] == 3
