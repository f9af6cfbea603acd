"""The dynamic batcher of one model instance: a bounded queue, a collector task, one batch in flight.

`submit` validates and enqueues on the event loop; the collector decides when to run (see
`scheduling.plan`), and the batch is assembled, run and split in an executor thread so the loop keeps
accepting requests (or, `inline`, on the loop itself, when there is no second core for the thread).
Only one batch per instance is in flight: requests arriving meanwhile queue up and form the next,
larger batch, which is where batching pays. With `isolate_failures`, a batch whose run fails is run
again one request at a time, so one request's bad values fail that request only.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from service.batching.errors import (
    BatcherStoppedError,
    BatchExecutionError,
    DeadlineExceededError,
    InputRejectedError,
    InvalidInputError,
    QueueFullError,
)
from service.batching.observer import BatchObserver, BatchReport, DropReason, RequestTiming
from service.batching.padding import (
    NO_PADDING,
    SequencePadding,
    Signature,
    Tensors,
    assemble,
    count_samples,
    sequence_length,
    signature,
    split,
)
from service.batching.policy import BatchPolicy
from service.batching.scheduling import Wait, plan
from service.schema.config import BatchingSettings

RunBatch = Callable[[Tensors], Mapping[str, np.ndarray]]
"""Runs the model once on a whole batch (e.g. an ONNX Runtime session's run); called in a worker thread."""

_log = logging.getLogger(__name__)
_SMOOTHING = 0.2
"""Weight of the newest batch in the running averages behind the Retry-After estimate."""
_UNKNOWN_BATCH_S = 1.0
"""Retry-After estimate before any batch has run (the queue filled up before the first answer)."""


@dataclass(eq=False)
class _Request:
    inputs: Mapping[str, np.ndarray]
    samples: int
    length: int | None
    signature: Signature
    enqueued_at: float
    deadline: float | None
    future: asyncio.Future[Tensors]
    running: bool = field(default=False)


@dataclass(frozen=True)
class _Outcome:
    answers: list[Tensors] | None
    stage_s: tuple[float, float, float]
    error: Exception | None
    ran: bool = True
    """False when the executor refused the work: re-running the requests one by one would not help."""


class Batcher:
    """Dynamic batcher for one model instance; create it anywhere, use it from one event loop."""

    def __init__(
        self,
        run_batch: RunBatch,
        policy: BatchPolicy | BatchingSettings,
        executor: Executor,
        *,
        padding: SequencePadding = NO_PADDING,
        observers: Sequence[BatchObserver] = (),
        name: str = "batcher",
        inline: bool = False,
    ) -> None:
        self.policy = policy if isinstance(policy, BatchPolicy) else BatchPolicy.from_settings(policy)
        self.padding = padding
        self.name = name
        self.inline = inline
        self.batch_axis = self.policy.max_batch_size > 0
        """False (`max_batch_size: 0`, Triton's meaning): axis 0 is not a batch axis; each request runs
        alone with its exact shapes (scalars too) and counts as one sample."""
        """Run batches on the event loop itself rather than in `executor`: for a server on one core."""
        self._run_batch = run_batch
        self._executor = executor
        self._observers = tuple(observers)
        self._queue: list[_Request] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Future[None] | None = None
        """The sleeping collector's: resolved by the next arrival (or by stop)."""
        self._collector: asyncio.Task[None] | None = None
        self._in_flight: list[_Request] = []
        """The batch the collector is running: failed with the queue if the collector ever ends early."""
        self.restarts = 0
        """How often a collector that died (a defect) was replaced by a fresh one."""
        self._stopping = False
        self._busy = False
        self._batch_s: float | None = None
        self._requests_per_batch = 1.0

    @property
    def queued(self) -> int:
        """Requests waiting (not counting the batch in flight)."""
        return len(self._queue)

    @property
    def busy(self) -> bool:
        """Whether a batch is executing right now."""
        return self._busy

    def retry_after_s(self) -> float:
        """Rough time until the current queue has drained, from recent batch durations."""
        if self._batch_s is None:
            return _UNKNOWN_BATCH_S
        batches_ahead = len(self._queue) / self._requests_per_batch + 1
        return batches_ahead * self._batch_s + self.policy.max_queue_delay_s

    async def submit(self, inputs: Mapping[str, np.ndarray], *, deadline: float | None = None) -> Tensors:
        """Run `inputs` (batch axis 0, one or more samples) with other requests; return its outputs.

        `deadline` is a `time.monotonic()` time; None means the policy's default timeout, if any.
        Raises InvalidInputError, QueueFullError, DeadlineExceededError, BatcherStoppedError or
        BatchExecutionError. Cancelling the awaiting task drops the request if it is still queued.
        """
        if self._stopping:
            raise BatcherStoppedError(f"{self.name} is stopped")
        samples = count_samples(inputs) if self.batch_axis else _one_sample(inputs)
        length = sequence_length(inputs, self.padding)
        request_signature = signature(inputs, self.padding, length)
        now = time.monotonic()
        if deadline is None and self.policy.default_timeout_s is not None:
            deadline = now + self.policy.default_timeout_s
        if deadline is not None and deadline <= now:
            self._notify_dropped("deadline", 0.0)
            raise DeadlineExceededError(0.0)
        if len(self._queue) >= self.policy.max_queue_size:
            self._notify_dropped("queue_full", 0.0)
            raise QueueFullError(len(self._queue), self.retry_after_s())
        request = _Request(
            inputs=inputs,
            samples=samples,
            length=length,
            signature=request_signature,
            enqueued_at=now,
            deadline=deadline,
            future=self._event_loop().create_future(),
        )
        if self._collector is None or self._collector.done():
            self._start_collector()
        self._queue.append(request)
        self._notify_depth(1)
        self._wake_collector()
        try:
            return await self._result(request)
        except asyncio.CancelledError:
            self._abandon(request)
            raise

    async def stop(self) -> None:
        """Refuse new requests, run every queued one without waiting for a full batch, then return."""
        self._stopping = True
        self._wake_collector()
        if self._collector is not None:
            with contextlib.suppress(Exception):  # a collector that died was logged when it did
                await asyncio.shield(self._collector)

    async def _result(self, request: _Request) -> Tensors:
        if request.deadline is None:
            return await request.future
        # A timer rather than asyncio.wait: it costs a fraction as much, and most requests never fire it.
        remaining = max(0.0, request.deadline - time.monotonic())
        timer = self._event_loop().call_later(remaining, self._expire, request)
        try:
            return await request.future
        finally:
            timer.cancel()

    def _expire(self, request: _Request) -> None:
        """The deadline passed: a request still queued fails with DeadlineExceededError, unrun."""
        if request.running or request.future.done():
            return
        waited = time.monotonic() - request.enqueued_at
        self._queue.remove(request)
        self._notify_depth(-1)
        self._notify_dropped("deadline", waited)
        request.future.set_exception(DeadlineExceededError(waited))

    def _abandon(self, request: _Request) -> None:
        """Its caller went away: take it out of the queue (if still there) and silence its future."""
        if not request.running and request in self._queue:
            self._queue.remove(request)
            self._notify_depth(-1)
            self._notify_dropped("cancelled", time.monotonic() - request.enqueued_at)
        if not request.future.done():
            request.future.cancel()
        elif not request.future.cancelled():
            request.future.exception()  # retrieved: no "exception never retrieved" log at collection

    def _start_collector(self) -> None:
        """The collector task, started by the first request, and again by the next request should it ever
        die (a defect): its requests have failed by then, and the instance must not stay dead, answering
        503 while readiness says ready and the pool keeps choosing it."""
        if self._collector is not None:
            self.restarts += 1
            _log.error("batcher_restarted", extra={"batcher": self.name, "restarts": self.restarts})
        self._collector = self._event_loop().create_task(self._collect(), name=self.name)
        self._collector.add_done_callback(self._collector_ended)

    def _collector_ended(self, task: asyncio.Task[None]) -> None:
        """Log a collector that died of an exception at once, with its traceback (nothing awaits it)."""
        if not task.cancelled() and (error := task.exception()) is not None:
            _log.error("batcher_collector_died", exc_info=error, extra={"batcher": self.name})

    async def _collect(self) -> None:
        """Run batches until stopped; on any exit (stop, cancellation, a defect) fail what it still holds,
        the batch in flight included, so no request waits forever."""
        try:
            while (batch := await self._next_batch()) is not None:
                self._in_flight = batch
                await self._execute(batch)
                self._in_flight = []
        finally:
            stopped = BatcherStoppedError(f"{self.name} stopped")
            for request in (*self._in_flight, *self._queue):
                if not request.future.done():
                    request.future.set_exception(stopped)
            self._in_flight = []
            if self._queue:
                self._notify_depth(-len(self._queue))
                self._queue.clear()

    async def _next_batch(self) -> list[_Request] | None:
        while True:
            if not self._queue:
                if self._stopping:
                    return None
                await self._wait_for_arrival(None)
                continue
            now = time.monotonic()
            decision = plan(self._queue, self.policy, now, draining=self._stopping)
            if isinstance(decision, Wait):
                await self._wait_for_arrival(None if decision.until is None else decision.until - now)
                continue
            batch = self._take(decision.indices, now)
            if batch:
                return batch

    async def _wait_for_arrival(self, timeout_s: float | None) -> None:
        """Sleep until a request arrives, `stop` is called, or `timeout_s` passes (None = no limit).

        A future rather than an `asyncio.Event` (whose every wait looks up the running loop): see
        `_event_loop`. The caller checked the queue just before, with no await in between.
        """
        self._wakeup = self._event_loop().create_future()
        if timeout_s is None:
            await self._wakeup
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup, timeout_s)

    def _wake_collector(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        """The loop this batcher serves, looked up once. On Python 3.11 each `asyncio.get_running_loop()`
        (also inside `asyncio.Event.wait` and `asyncio.wait_for`) makes a getpid() system call, and the
        path of one request made five of them."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _take(self, indices: Sequence[int], now: float) -> list[_Request]:
        """Remove the chosen requests from the queue; those past their deadline fail instead of running."""
        chosen = [self._queue[i] for i in indices]
        for i in sorted(indices, reverse=True):
            del self._queue[i]
        self._notify_depth(-len(chosen))
        batch = []
        for request in chosen:
            waited = now - request.enqueued_at
            if request.future.done():  # its client went away in this loop iteration; _abandon comes next
                self._notify_dropped("cancelled", waited)
            elif request.deadline is not None and request.deadline <= now:
                request.future.set_exception(DeadlineExceededError(waited))
                self._notify_dropped("deadline", waited)
            else:
                request.running = True
                batch.append(request)
        return batch

    async def _execute(self, batch: list[_Request]) -> None:
        started = time.monotonic()
        timings = tuple(RequestTiming(r.samples, started - r.enqueued_at) for r in batch)
        self._busy = True
        parts, sizes, lengths = [r.inputs for r in batch], [r.samples for r in batch], [r.length for r in batch]
        try:
            if self.inline:
                outcome = self._run_sync(parts, sizes, lengths)
            else:
                outcome = await self._event_loop().run_in_executor(
                    self._executor, self._run_sync, parts, sizes, lengths
                )
        except Exception as exc:  # the executor refused the work (e.g. shut down)
            outcome = _Outcome(None, (0.0, 0.0, 0.0), exc, ran=False)
        finally:
            self._busy = False
        self._learn(time.monotonic() - started, len(batch))
        if outcome.answers is None and outcome.ran and len(batch) > 1 and self.policy.isolate_failures:
            await self._isolate(batch, outcome.error)
            return
        # Refused values are the client's fault only when its request ran alone; in a shared run they
        # may be another client's, so that run is a failure like any other (logged, error id only).
        rejected = len(batch) == 1 and isinstance(outcome.error, InputRejectedError)
        error_id = "" if outcome.answers is not None or rejected else self._log_failure(outcome.error, batch)
        for index, request in enumerate(batch):
            if request.future.done():  # its client went away while the batch ran: no answer, not a success
                timings = _unanswered(timings, index)
                continue
            if outcome.answers is not None:
                request.future.set_result(outcome.answers[index])
            elif rejected:
                request.future.set_exception(InputRejectedError(str(outcome.error)))
            else:
                request.future.set_exception(_failure(outcome.error, error_id))
        report = BatchReport(timings, *outcome.stage_s, error=outcome.error)
        for observer in self._observers:
            self._call(observer.batch_executed, report)

    async def _isolate(self, batch: list[_Request], error: Exception | None) -> None:
        """A failed batch runs again one request at a time, so one request's bad values (an index out of
        range, say) fail only that request. Only those single runs are reported to the observers."""
        _log.warning(
            "batch_failed_isolating",
            extra={"batcher": self.name, "requests": len(batch), "error": f"{type(error).__name__}: {error}"[:300]},
        )
        for request in batch:
            if request.future.done():  # its client went away while the failed batch ran
                self._notify_dropped("cancelled", time.monotonic() - request.enqueued_at)
            else:
                await self._execute([request])

    def _run_sync(
        self, parts: list[Mapping[str, np.ndarray]], sizes: list[int], lengths: list[int | None]
    ) -> _Outcome:
        """Worker-thread side: assemble, run, split; each stage timed, any failure returned, not raised."""
        marks = [time.perf_counter()]
        answers = None
        error = None
        try:
            inputs = assemble(parts, lengths, self.padding)
            marks.append(time.perf_counter())
            outputs = self._run_batch(inputs)
            marks.append(time.perf_counter())
            answers = split(outputs, sizes, lengths, self.padding) if self.batch_axis else [dict(outputs)]
        except Exception as exc:
            error = exc
        marks.append(time.perf_counter())
        stages = [b - a for a, b in pairwise(marks)] + [0.0, 0.0]
        return _Outcome(answers, (stages[0], stages[1], stages[2]), error)

    def _log_failure(self, error: Exception | None, batch: Sequence[_Request]) -> str:
        """Log a failed run once, with its traceback, under a new error id that every request carries."""
        error_id = uuid.uuid4().hex[:16]
        _log.error(
            "batch_failed",
            exc_info=error,
            extra={
                "batcher": self.name,
                "error_id": error_id,
                "requests": len(batch),
                "samples": sum(r.samples for r in batch),
            },
        )
        return error_id

    def _learn(self, batch_s: float, requests: int) -> None:
        if self._batch_s is None:
            self._batch_s = batch_s
            self._requests_per_batch = float(requests)
            return
        self._batch_s += _SMOOTHING * (batch_s - self._batch_s)
        self._requests_per_batch += _SMOOTHING * (requests - self._requests_per_batch)

    def _notify_depth(self, delta: int) -> None:
        for observer in self._observers:
            self._call(observer.queue_depth_changed, delta)

    def _notify_dropped(self, reason: DropReason, waited_s: float) -> None:
        for observer in self._observers:
            self._call(observer.request_dropped, reason, waited_s)

    def _call(self, hook: Callable[..., None], *args: object) -> None:
        """Observers must not take the batcher down: a failing hook is logged and skipped."""
        try:
            hook(*args)
        except Exception:
            _log.exception("%s: batch observer %r failed", self.name, hook)


def _one_sample(inputs: Mapping[str, np.ndarray]) -> int:
    """A request to a model without a batch axis: one sample, whatever its shapes."""
    if not inputs:
        raise InvalidInputError("request has no input tensors")
    return 1


def _unanswered(timings: tuple[RequestTiming, ...], index: int) -> tuple[RequestTiming, ...]:
    """The timings with request `index` marked as not answered (rare: only when a client left mid-run)."""
    gone = dataclasses.replace(timings[index], answered=False)
    return (*timings[:index], gone, *timings[index + 1 :])


def _failure(error: Exception | None, error_id: str) -> BatchExecutionError:
    """A fresh error per request (tasks re-raising one shared instance would tangle its traceback)."""
    if isinstance(error, BatchExecutionError):
        failure = type(error)(str(error), error_id)
    else:
        failure = BatchExecutionError(f"model execution failed: {error}", error_id)
    failure.__cause__ = error
    return failure
