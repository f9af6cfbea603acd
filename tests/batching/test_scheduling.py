"""The collector's decision rules, on plain queue entries."""

from __future__ import annotations

from dataclasses import dataclass

from service.batching import BatchPolicy
from service.batching.scheduling import Dispatch, Wait, plan


@dataclass(frozen=True)
class Entry:
    samples: int = 1
    enqueued_at: float = 0.0
    signature: str = "a"


POLICY = BatchPolicy(max_batch_size=8, max_queue_delay_s=0.010)


def test_plan_waits_for_delay_when_batch_not_full() -> None:
    assert plan([Entry(), Entry(enqueued_at=0.004)], POLICY, now=0.005) == Wait(until=0.010)


def test_plan_dispatches_when_oldest_waited_the_delay() -> None:
    assert plan([Entry(), Entry(enqueued_at=0.004)], POLICY, now=0.010) == Dispatch((0, 1))


def test_plan_dispatches_at_once_when_next_request_does_not_fit() -> None:
    queue = [Entry(samples=3), Entry(samples=4), Entry(samples=2)]
    assert plan(queue, POLICY, now=0.0) == Dispatch((0, 1))


def test_plan_dispatches_oversized_request_alone() -> None:
    assert plan([Entry(samples=20), Entry()], POLICY, now=0.0) == Dispatch((0,))


def test_plan_skips_incompatible_requests_keeping_their_place() -> None:
    queue = [Entry(), Entry(signature="b"), Entry(samples=7)]
    assert plan(queue, POLICY, now=0.0) == Dispatch((0, 2))


def test_plan_cuts_at_longest_preferred_prefix() -> None:
    policy = BatchPolicy(max_batch_size=16, max_queue_delay_s=1.0, preferred_batch_sizes=(2, 4))
    assert plan([Entry()] * 5, policy, now=0.0) == Dispatch((0, 1, 2, 3))
    waiting = BatchPolicy(max_queue_delay_s=0.002, preferred_batch_sizes=(4,))
    assert plan([Entry()] * 3, waiting, now=0.0) == Wait(until=0.002)


def test_plan_with_exact_switch_waits_without_timer_until_count_reached() -> None:
    policy = BatchPolicy(max_batch_size=32, max_queue_delay_s=0.0, exact_batch_requests=3)
    assert plan([Entry(), Entry()], policy, now=100.0) == Wait(until=None)
    assert plan([Entry()] * 4, policy, now=100.0) == Dispatch((0, 1, 2))


def test_plan_with_exact_switch_dispatches_when_full() -> None:
    policy = BatchPolicy(max_batch_size=4, exact_batch_requests=3)
    assert plan([Entry(samples=2), Entry(samples=3)], policy, now=0.0) == Dispatch((0,))


def test_plan_dispatches_everything_that_fits_when_draining() -> None:
    policy = BatchPolicy(max_batch_size=8, exact_batch_requests=5)
    assert plan([Entry(), Entry()], policy, now=0.0, draining=True) == Dispatch((0, 1))


def test_plan_without_batching_runs_one_request_at_a_time() -> None:
    policy = BatchPolicy(max_batch_size=0, max_queue_delay_s=1.0)
    assert plan([Entry(samples=3), Entry()], policy, now=0.0) == Dispatch((0,))
