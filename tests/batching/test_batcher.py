"""The dynamic batcher against real ONNX Runtime sessions: answers, executed batch sizes, failure paths."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest

from service.batching import (
    Batcher,
    BatcherPool,
    BatcherStoppedError,
    BatchExecutionError,
    BatchOutputError,
    BatchPolicy,
    BatchReport,
    DeadlineExceededError,
    DropReason,
    InvalidInputError,
    QueueFullError,
    SequencePadding,
    Tensors,
)
from service.schema.config import BatchingSettings
from service.statistics import ModelStatistics

from .graphs import Recorder, session_runner

pytestmark = pytest.mark.anyio

TOLERANCE = 1e-5


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll the event loop until `condition` holds (readiness polling, never a fixed sleep)."""
    give_up = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < give_up, "condition not reached in time"
        await asyncio.sleep(0.001)


def matmul_requests(count: int, seed: int = 0) -> list[Tensors]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(size=(int(rng.integers(1, 4)), 4)).astype(np.float32)} for _ in range(count)]


def alone(session: ort.InferenceSession, request: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
    return session_runner(session)(dict(request))


def assert_same(got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray]) -> None:
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].shape == want[name].shape, name
        np.testing.assert_allclose(got[name], want[name], atol=TOLERANCE, rtol=0)


def batch_sizes(stats: ModelStatistics) -> dict[int, int]:
    return {b["batch_size"]: b["compute_infer"]["count"] for b in stats.to_json()["batch_stats"]}


async def test_submit_concurrent_requests_match_single_runs(
    matmul_session: ort.InferenceSession, executor: ThreadPoolExecutor
) -> None:
    stats = ModelStatistics("matmul", "1")
    batcher = Batcher(
        session_runner(matmul_session),
        BatchPolicy(max_batch_size=16, max_queue_delay_s=0.005),
        executor,
        observers=[stats],
    )
    requests = matmul_requests(64)
    answers = await asyncio.gather(*(batcher.submit(r) for r in requests))
    await batcher.stop()
    for request, answer in zip(requests, answers, strict=True):
        assert_same(answer, alone(matmul_session, request))
    report = stats.to_json()
    assert report["inference_count"] == sum(r["x"].shape[0] for r in requests)
    assert report["execution_count"] < len(requests)
    assert max(batch_sizes(stats)) > 1


async def test_exact_batch_switch_runs_eight_requests_as_one_execution(
    matmul_session: ort.InferenceSession, executor: ThreadPoolExecutor
) -> None:
    stats = ModelStatistics("matmul", "1")
    recorder = Recorder(session_runner(matmul_session))
    policy = BatchPolicy(max_batch_size=32, max_queue_delay_s=0.0, exact_batch_requests=8)
    batcher = Batcher(recorder, policy, executor, observers=[stats])
    requests = [{"x": np.full((1, 4), i, dtype=np.float32)} for i in range(8)]
    tasks = []
    for count, request in enumerate(requests[:7], start=1):  # arriving one by one, despite a zero delay
        tasks.append(asyncio.create_task(batcher.submit(request)))
        await until(lambda count=count: batcher.queued == count)
    assert recorder.batches == []
    answers = await asyncio.gather(*tasks, batcher.submit(requests[7]))
    await batcher.stop()
    for request, answer in zip(requests, answers, strict=True):
        assert_same(answer, alone(matmul_session, request))
    assert recorder.sizes == [8]
    assert batch_sizes(stats) == {8: 1}
    assert (stats.to_json()["inference_count"], stats.to_json()["execution_count"]) == (8, 1)


async def test_submit_raises_queue_full_when_queue_is_full(
    matmul_session: ort.InferenceSession, executor: ThreadPoolExecutor
) -> None:
    stats = ModelStatistics("matmul", "1")
    policy = BatchPolicy(max_queue_size=2, exact_batch_requests=100)
    batcher = Batcher(session_runner(matmul_session), policy, executor, observers=[stats])
    waiting = [asyncio.create_task(batcher.submit(r)) for r in matmul_requests(2)]
    await until(lambda: batcher.queued == 2)
    with pytest.raises(QueueFullError) as refused:
        await batcher.submit(matmul_requests(1, seed=9)[0])
    assert refused.value.retry_after_s > 0
    await batcher.stop()  # drains the two queued requests
    assert all(task.result()["y"].shape[1] == 3 for task in waiting)
    assert stats.to_json()["inference_stats"]["fail"]["count"] == 1


async def test_submit_raises_deadline_exceeded_when_deadline_already_passed(
    matmul_session: ort.InferenceSession, executor: ThreadPoolExecutor
) -> None:
    recorder = Recorder(session_runner(matmul_session))
    batcher = Batcher(recorder, BatchPolicy(), executor)
    with pytest.raises(DeadlineExceededError):
        await batcher.submit(matmul_requests(1)[0], deadline=time.monotonic() - 1.0)
    await batcher.stop()
    assert recorder.batches == []


async def test_submit_raises_deadline_exceeded_when_deadline_passes_in_queue(
    matmul_session: ort.InferenceSession, executor: ThreadPoolExecutor
) -> None:
    stats = ModelStatistics("matmul", "1")
    recorder = Recorder(session_runner(matmul_session))
    policy = BatchPolicy(exact_batch_requests=2, default_timeout_s=0.05)
    batcher = Batcher(recorder, policy, executor, observers=[stats])
    with pytest.raises(DeadlineExceededError):
        await batcher.submit(matmul_requests(1)[0])
    assert batcher.queued == 0
    answers = await asyncio.gather(*(batcher.submit(r) for r in matmul_requests(2, seed=1)))
    await batcher.stop()
    assert len(answers) == 2
    assert recorder.sizes == [sum(r["x"].shape[0] for r in matmul_requests(2, seed=1))]
    assert stats.to_json()["inference_stats"]["fail"]["count"] == 1


async def test_failed_run_fails_only_its_batch(
    matmul_session: ort.InferenceSession, executor: ThreadPoolExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    stats = ModelStatistics("matmul", "1")
    run = session_runner(matmul_session)
    calls = 0

    def fail_first(inputs: Tensors) -> Mapping[str, np.ndarray]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("device lost")
        return run(inputs)

    batcher = Batcher(fail_first, BatchPolicy(exact_batch_requests=2), executor, observers=[stats])
    first = await asyncio.gather(*(batcher.submit(r) for r in matmul_requests(2)), return_exceptions=True)
    second_requests = matmul_requests(2, seed=1)
    second = await asyncio.gather(*(batcher.submit(r) for r in second_requests))
    await batcher.stop()
    for error in first:
        assert isinstance(error, BatchExecutionError)
        assert isinstance(error.__cause__, RuntimeError)
        assert "device lost" in str(error)
    assert first[0] is not first[1]
    error_ids = {error.error_id for error in first if isinstance(error, BatchExecutionError)}
    (logged,) = [r for r in caplog.records if r.getMessage() == "batch_failed"]  # once per batch
    assert error_ids == {logged.error_id} and logged.exc_info is not None
    for request, answer in zip(second_requests, second, strict=True):
        assert_same(answer, alone(matmul_session, request))
    report = stats.to_json()
    assert (report["execution_count"], report["inference_stats"]["fail"]["count"]) == (1, 2)


async def test_output_batch_mismatch_fails_that_batch(
    matmul_session: ort.InferenceSession, executor: ThreadPoolExecutor
) -> None:
    run = session_runner(matmul_session)
    calls = 0

    def drop_a_row_once(inputs: Tensors) -> Mapping[str, np.ndarray]:
        nonlocal calls
        calls += 1
        outputs = run(inputs)
        return {k: v[:-1] for k, v in outputs.items()} if calls == 1 else outputs

    batcher = Batcher(drop_a_row_once, BatchPolicy(exact_batch_requests=2), executor)
    requests = [{"x": np.ones((1, 4), np.float32)}, {"x": np.ones((2, 4), np.float32)}]
    first = await asyncio.gather(*(batcher.submit(r) for r in requests), return_exceptions=True)
    second = await asyncio.gather(*(batcher.submit(r) for r in requests))
    await batcher.stop()
    for error in first:
        assert isinstance(error, BatchOutputError)
        assert "output 'y' has batch size 2, but the batch held 3 samples" in str(error)
    assert [a["y"].shape[0] for a in second] == [1, 2]


async def test_cancelled_request_is_never_run(
    matmul_session: ort.InferenceSession, executor: ThreadPoolExecutor
) -> None:
    stats = ModelStatistics("matmul", "1")
    recorder = Recorder(session_runner(matmul_session))
    batcher = Batcher(recorder, BatchPolicy(exact_batch_requests=2), executor, observers=[stats])
    marker = {"x": np.full((1, 4), 777.0, dtype=np.float32)}
    gone = asyncio.create_task(batcher.submit(marker))
    await until(lambda: batcher.queued == 1)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert batcher.queued == 0
    kept = matmul_requests(2)
    await asyncio.gather(*(batcher.submit(r) for r in kept))
    await batcher.stop()
    assert not any((batch["x"] == 777.0).any() for batch in recorder.batches)
    report = stats.to_json()
    assert report["inference_count"] == sum(r["x"].shape[0] for r in kept)
    assert report["inference_stats"]["fail"]["count"] == 1


async def test_padding_matches_single_runs_and_slices_sequence_outputs(
    sequence_session: ort.InferenceSession, executor: ThreadPoolExecutor
) -> None:
    padding = SequencePadding.from_graph(
        {"input_ids": 0, "attention_mask": 0},
        {i.name: i.shape for i in sequence_session.get_inputs()},
        {o.name: o.shape for o in sequence_session.get_outputs()},
        bucketing=False,
    )
    assert padding.outputs == {"token_scores"}
    recorder = Recorder(session_runner(sequence_session))
    lengths = [1, 3, 7, 2, 5, 4]
    batcher = Batcher(recorder, BatchPolicy(exact_batch_requests=len(lengths)), executor, padding=padding)
    rng = np.random.default_rng(2)
    requests = []
    for i, length in enumerate(lengths):
        samples = 1 + i % 2
        requests.append(
            {
                "input_ids": rng.integers(1, 32, size=(samples, length)).astype(np.int64),
                "attention_mask": np.ones((samples, length), dtype=np.int64),
            }
        )
    answers = await asyncio.gather(*(batcher.submit(r) for r in requests))
    await batcher.stop()
    (batch,) = recorder.batches
    assert batch["input_ids"].shape == (9, 7)
    assert batch["attention_mask"][0].tolist() == [1, 0, 0, 0, 0, 0, 0]
    for request, answer in zip(requests, answers, strict=True):
        assert_same(answer, alone(sequence_session, request))


async def test_bucketing_batches_only_requests_of_one_length_band(
    sequence_session: ort.InferenceSession, executor: ThreadPoolExecutor
) -> None:
    padding = SequencePadding({"input_ids": 0, "attention_mask": 0}, outputs=frozenset({"token_scores"}))
    recorder = Recorder(session_runner(sequence_session))
    batcher = Batcher(
        recorder, BatchPolicy(max_batch_size=16, max_queue_delay_s=0.005), executor, padding=padding
    )
    lengths = [9, 2, 12, 3, 16, 4]
    requests = [
        {"input_ids": np.full((1, n), 5, np.int64), "attention_mask": np.ones((1, n), np.int64)}
        for n in lengths
    ]
    answers = await asyncio.gather(*(batcher.submit(r) for r in requests))
    await batcher.stop()
    assert sorted(b["input_ids"].shape for b in recorder.batches) == [(1, 2), (2, 4), (3, 16)]
    for request, answer in zip(requests, answers, strict=True):
        assert_same(answer, alone(sequence_session, request))


async def test_batching_off_runs_each_request_alone(
    matmul_session: ort.InferenceSession, executor: ThreadPoolExecutor
) -> None:
    recorder = Recorder(session_runner(matmul_session))
    batcher = Batcher(recorder, BatchingSettings(max_batch_size=0), executor)
    requests = [{"x": np.ones((2, 4), np.float32) * i} for i in range(10)]
    answers = await asyncio.gather(*(batcher.submit(r) for r in requests))
    await batcher.stop()
    assert recorder.sizes == [2] * 10
    for request, answer in zip(requests, answers, strict=True):
        assert_same(answer, alone(matmul_session, request))


async def test_oversized_request_runs_alone(
    matmul_session: ort.InferenceSession, executor: ThreadPoolExecutor
) -> None:
    recorder = Recorder(session_runner(matmul_session))
    batcher = Batcher(recorder, BatchPolicy(max_batch_size=4, max_queue_delay_s=0.01), executor)
    requests = [{"x": np.ones((1, 4), np.float32)}, {"x": np.ones((6, 4), np.float32)}]
    answers = await asyncio.gather(*(batcher.submit(r) for r in requests))
    await batcher.stop()
    assert recorder.sizes == [1, 6]
    assert [a["y"].shape[0] for a in answers] == [1, 6]


async def test_incompatible_request_is_not_batched_with_others(
    matmul_session: ort.InferenceSession, executor: ThreadPoolExecutor
) -> None:
    recorder = Recorder(session_runner(matmul_session))
    batcher = Batcher(recorder, BatchPolicy(max_batch_size=16, max_queue_delay_s=0.01), executor)
    good = matmul_requests(4)
    bad = {"x": np.ones((1, 5), np.float32)}  # the graph wants 4 features
    results = await asyncio.gather(
        *(batcher.submit(r) for r in [*good[:2], bad, *good[2:]]), return_exceptions=True
    )
    await batcher.stop()
    assert isinstance(results[2], BatchExecutionError)
    for request, answer in zip(good, [*results[:2], *results[3:]], strict=True):
        assert isinstance(answer, dict)
        assert_same(answer, alone(matmul_session, request))
    assert sorted(recorder.sizes) == [1, sum(r["x"].shape[0] for r in good)]


async def test_preferred_batch_size_runs_without_waiting_for_the_delay(
    matmul_session: ort.InferenceSession, executor: ThreadPoolExecutor
) -> None:
    recorder = Recorder(session_runner(matmul_session))
    policy = BatchPolicy(max_batch_size=16, max_queue_delay_s=60.0, preferred_batch_sizes=(4,))
    batcher = Batcher(recorder, policy, executor)
    requests = [{"x": np.ones((1, 4), np.float32)} for _ in range(4)]
    started = time.monotonic()
    await asyncio.gather(*(batcher.submit(r) for r in requests))
    assert time.monotonic() - started < 30.0
    await batcher.stop()
    assert recorder.sizes == [4]


async def test_submit_rejects_mismatched_sequence_lengths_before_enqueueing(
    sequence_session: ort.InferenceSession, executor: ThreadPoolExecutor
) -> None:
    padding = SequencePadding({"input_ids": 0, "attention_mask": 0})
    batcher = Batcher(session_runner(sequence_session), BatchPolicy(), executor, padding=padding)
    ragged = {"input_ids": np.ones((1, 4), np.int64), "attention_mask": np.ones((1, 3), np.int64)}
    with pytest.raises(InvalidInputError, match="disagree on the sequence length"):
        await batcher.submit(ragged)
    with pytest.raises(InvalidInputError, match="no samples"):
        await batcher.submit({"input_ids": np.ones((0, 4), np.int64)})
    assert batcher.queued == 0
    await batcher.stop()


async def test_stop_drains_queued_requests_and_refuses_new_ones(
    matmul_session: ort.InferenceSession, executor: ThreadPoolExecutor
) -> None:
    batcher = Batcher(session_runner(matmul_session), BatchPolicy(exact_batch_requests=10), executor)
    requests = matmul_requests(3)
    tasks = [asyncio.create_task(batcher.submit(r)) for r in requests]
    await until(lambda: batcher.queued == 3)
    await batcher.stop()
    for request, task in zip(requests, tasks, strict=True):
        assert_same(task.result(), alone(matmul_session, request))
    with pytest.raises(BatcherStoppedError):
        await batcher.submit(requests[0])


async def test_pool_spreads_requests_over_instances(
    matmul_session: ort.InferenceSession, executor: ThreadPoolExecutor
) -> None:
    recorders = [Recorder(session_runner(matmul_session)) for _ in range(2)]
    stats = ModelStatistics("matmul", "1")
    pool = BatcherPool.create(
        recorders, BatchPolicy(max_batch_size=8, max_queue_delay_s=0.005), executor, observers=[stats]
    )
    requests = matmul_requests(16)
    answers = await asyncio.gather(*(pool.submit(r) for r in requests))
    await pool.stop()
    for request, answer in zip(requests, answers, strict=True):
        assert_same(answer, alone(matmul_session, request))
    assert all(r.batches for r in recorders)
    assert stats.to_json()["inference_count"] == sum(r["x"].shape[0] for r in requests)


class BrokenObserver:
    def queue_depth_changed(self, delta: int) -> None:
        raise RuntimeError("metrics backend down")

    def batch_executed(self, report: BatchReport) -> None:
        raise RuntimeError("metrics backend down")

    def request_dropped(self, reason: DropReason, waited_s: float) -> None:
        raise RuntimeError("metrics backend down")


async def test_failing_observer_does_not_stop_the_batcher(
    matmul_session: ort.InferenceSession, executor: ThreadPoolExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    stats = ModelStatistics("matmul", "1")
    batcher = Batcher(
        session_runner(matmul_session), BatchPolicy(), executor, observers=[BrokenObserver(), stats]
    )
    requests = matmul_requests(4)
    answers = await asyncio.gather(*(batcher.submit(r) for r in requests))
    await batcher.stop()
    for request, answer in zip(requests, answers, strict=True):
        assert_same(answer, alone(matmul_session, request))
    assert stats.to_json()["inference_count"] == sum(r["x"].shape[0] for r in requests)
    assert "metrics backend down" in caplog.text


@pytest.mark.parametrize("inline", [True, False])
async def test_inline_batches_run_on_the_event_loop_thread(
    matmul_session: ort.InferenceSession, executor: ThreadPoolExecutor, inline: bool
) -> None:
    """`inline` (a server on one core) runs batches on the loop's thread, else on the executor's; the
    answers and the batching are the same either way."""
    run = session_runner(matmul_session)
    threads: list[int] = []

    def recording(batch: Tensors) -> Mapping[str, np.ndarray]:
        threads.append(threading.get_ident())
        return run(batch)

    batcher = Batcher(recording, BatchPolicy(max_batch_size=16, max_queue_delay_s=0.005), executor, inline=inline)
    requests = matmul_requests(32, seed=5)
    answers = await asyncio.gather(*(batcher.submit(r) for r in requests))
    await batcher.stop()
    for request, answer in zip(requests, answers, strict=True):
        assert_same(answer, alone(matmul_session, request))
    assert len(threads) < len(requests)
    on_loop = {ident == threading.get_ident() for ident in threads}
    assert on_loop == {inline}
