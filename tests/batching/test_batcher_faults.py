"""The collector never dies silently: a request cancelled in the very loop iteration that takes it is
skipped, and a collector that ends for any reason fails every request it holds and is replaced by the
next request, so an instance never stays dead behind a pool that keeps choosing it."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest

from service.batching import Batcher, BatcherPool, BatcherStoppedError, BatchPolicy, DropReason

from .graphs import session_runner

pytestmark = pytest.mark.anyio

REQUEST = {"x": np.ones((1, 4), np.float32)}


class Drops:
    """A batch observer that records why requests left unrun."""

    def __init__(self) -> None:
        self.reasons: list[DropReason] = []

    def queue_depth_changed(self, delta: int) -> None: ...

    def batch_executed(self, report: object) -> None: ...

    def request_dropped(self, reason: DropReason, waited_s: float) -> None:
        self.reasons.append(reason)


async def _queued(batcher: Batcher, count: int) -> None:
    give_up = time.monotonic() + 10
    while batcher.queued < count:
        assert time.monotonic() < give_up, "request never queued"
        await asyncio.sleep(0.001)


async def test_take_skips_a_request_whose_client_left_in_the_same_iteration(
    matmul_session: ort.InferenceSession, executor: ThreadPoolExecutor
) -> None:
    """A disconnect cancels the awaited future at once but runs the request's cleanup one iteration later;
    a collector taking the request in between (its deadline just passed) used to set an exception on the
    cancelled future, and died of InvalidStateError. The race is reproduced directly: no public call can
    order the event loop's callbacks that way on demand."""
    drops = Drops()
    policy = BatchPolicy(max_batch_size=4, max_queue_delay_s=60.0)
    batcher = Batcher(session_runner(matmul_session), policy, executor, observers=[drops])
    waiting = asyncio.create_task(batcher.submit(REQUEST, deadline=time.monotonic() + 60))
    await _queued(batcher, 1)
    request = batcher._queue[0]
    request.future.cancel()
    assert request.deadline is not None
    assert batcher._take([0], request.deadline + 1) == []
    assert drops.reasons == ["cancelled"]
    with pytest.raises(asyncio.CancelledError):
        await waiting
    later = asyncio.create_task(batcher.submit(REQUEST))
    await _queued(batcher, 1)
    await asyncio.wait_for(batcher.stop(), 10)  # runs what is queued without waiting out the delay
    assert (await later)["y"].shape == (1, 3), "the collector survived and still runs batches"


async def test_dead_collector_fails_what_it_held_and_the_next_request_revives_the_instance(
    matmul_session: ort.InferenceSession, executor: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = BatcherPool.create([session_runner(matmul_session)], BatchPolicy(max_batch_size=4), executor)
    (batcher,) = pool.batchers

    def defect(batch_s: float, requests: int) -> None:
        monkeypatch.undo()
        raise RuntimeError("a defect in the collector")

    monkeypatch.setattr(batcher, "_learn", defect)
    held = await asyncio.wait_for(
        asyncio.gather(*(pool.submit(REQUEST) for _ in range(3)), return_exceptions=True), 10
    )
    assert held and all(isinstance(outcome, BatcherStoppedError) for outcome in held), held
    answers = await asyncio.wait_for(asyncio.gather(*(pool.submit(REQUEST) for _ in range(5))), 10)
    assert [a["y"].shape for a in answers] == [(1, 3)] * 5
    assert batcher.restarts == 1
    await pool.stop()
