"""Fixtures: real ONNX Runtime sessions on tiny graphs, and a worker pool for the batcher."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import onnxruntime as ort
import pytest

from .graphs import make_session, matmul_model, sequence_model


@pytest.fixture(scope="session")
def matmul_session() -> ort.InferenceSession:
    return make_session(matmul_model())


@pytest.fixture(scope="session")
def sequence_session() -> ort.InferenceSession:
    return make_session(sequence_model())


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="test-batch") as pool:
        yield pool


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
