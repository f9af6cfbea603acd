"""Issue 16 #17: v2 inputs of a `tensor` model whose shapes disagree in a way only the graph says were a
500 ("model execution failed"). Axes that the graph names with one symbolic dimension are checked before
the run (400 naming both inputs, the axes and the sizes), and shapes ONNX Runtime cannot combine inside
the graph are a 400 naming the node when the request ran alone; other clients' requests are unharmed."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .repository import write_pairs
from .server import Server, serving

CONCURRENT = 12


@pytest.fixture(scope="module")
def pairs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("input-shapes")
    root = base / "models"
    root.mkdir()
    write_pairs(root)
    with serving(root.resolve(), base / "server.log") as srv:
        yield srv


def _pair(a_shape: list[int], b_shape: list[int]) -> dict[str, object]:
    def tensor(name: str, shape: list[int], value: float) -> dict[str, object]:
        size = shape[0] * shape[1]
        return {"name": name, "shape": shape, "datatype": "FP32", "data": [value] * size}

    return {"inputs": [tensor("a", a_shape, 1.0), tensor("b", b_shape, 2.0)]}


def _infer(server: Server, model: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/models/{model}/infer", json=body, timeout=30)


def test_inputs_disagreeing_on_a_shared_symbolic_dim_get_400_naming_both(pairs_server: Server) -> None:
    answer = _infer(pairs_server, "pair-shared", _pair([1, 2], [1, 3]))
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]
    assert "inputs[1] 'b' axis 1 has size 3" in message and "inputs[0] 'a' axis 1 has size 2" in message, message
    assert "'K'" in message, message
    assert _infer(pairs_server, "pair-shared", _pair([1, 3], [1, 3])).json()["outputs"][0]["data"] == [3.0] * 3


def test_unbatched_inputs_disagreeing_on_the_first_axis_get_400(pairs_server: Server) -> None:
    answer = _infer(pairs_server, "pair-unbatched", _pair([2, 3], [3, 3]))
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]
    assert "inputs[1] 'b' axis 0 has size 3" in message and "inputs[0] 'a' axis 0 has size 2" in message, message
    assert _infer(pairs_server, "pair-unbatched", _pair([2, 3], [2, 3])).status_code == 200


def test_shapes_only_onnx_runtime_cannot_combine_get_400_without_harming_others(pairs_server: Server) -> None:
    def send(i: int) -> httpx.Response:
        bad = i % 3 == 0
        return _infer(pairs_server, "pair-distinct", _pair([1, 2], [1, 3] if bad else [1, 2]))

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(send, range(CONCURRENT)))
    for i, answer in enumerate(answers):
        if i % 3 == 0:
            assert answer.status_code == 400, answer.text
            message = answer.json()["error"]
            assert "inputs ['a', 'b']: the model rejected these values at run time: Add node" in message, message
            assert "broadcast" in message and "onnxruntime_src" not in message and "::" not in message, message
        else:
            assert answer.status_code == 200, answer.text
            assert answer.json()["outputs"][0]["data"] == [3.0, 3.0]
    assert pairs_server.process.poll() is None
