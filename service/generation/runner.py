"""How the engine runs the graph: any async `feeds -> outputs` callable.

The server passes its `ServedModel.infer` (worker thread, metrics, error mapping); `SessionRunner`
adapts a bare ONNX Runtime session the same way for tools and tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

Tensors = dict[str, np.ndarray]
Run = Callable[[Tensors], Awaitable[Tensors]]
"""Runs the decoder graph once on named inputs; returns (at least) the logits and present outputs."""


class SessionRunner:
    """`session.run` in a one-thread executor, so the event loop keeps scheduling while the model runs."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._outputs: list[str] = [o.name for o in session.get_outputs()]
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generation")

    async def __call__(self, feeds: Tensors) -> Tensors:
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(self._executor, self._session.run, self._outputs, feeds)
        return dict(zip(self._outputs, results, strict=True))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
