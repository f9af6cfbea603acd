"""The collector's decision, as a pure function: run these queued requests now, or wait until when.

Rules, in order (Triton's dynamic batcher, simplified):
1. Walk the queue oldest first, taking requests compatible with the oldest one (same input names, dtypes
   and fixed dimensions) while they fit in `max_batch_size` samples; the oldest is always taken, so a
   request larger than `max_batch_size` still runs, alone. Incompatible requests keep their place.
2. Determinism switch (`exact_batch_requests = N`): run when N requests are taken or no more fit;
   otherwise wait for the next arrival, with no timer.
3. Run at once when the batch is full (the next compatible request would not fit) or the batcher drains.
4. Run the longest prefix whose sample count is a preferred batch size, if any.
5. Run when the oldest request has waited `max_queue_delay`; otherwise wait until then.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Protocol

from service.batching.policy import BatchPolicy


class Queued(Protocol):
    @property
    def samples(self) -> int: ...

    @property
    def enqueued_at(self) -> float: ...

    @property
    def signature(self) -> Hashable: ...


@dataclass(frozen=True)
class Dispatch:
    indices: tuple[int, ...]
    """Queue positions to run together, oldest first."""


@dataclass(frozen=True)
class Wait:
    until: float | None
    """Monotonic time at which to decide again; None waits for the next arrival."""


def plan(
    queue: Sequence[Queued], policy: BatchPolicy, now: float, *, draining: bool = False
) -> Dispatch | Wait:
    """Decide for a non-empty queue; `now` and `enqueued_at` share one monotonic clock."""
    head = queue[0]
    cap = policy.sample_cap
    chosen: list[int] = []
    total = 0
    full = False
    preferred_prefix = 0
    for index, item in enumerate(queue):
        if item.signature != head.signature:
            continue
        if chosen and total + item.samples > cap:
            full = True
            break
        chosen.append(index)
        total += item.samples
        if policy.is_preferred(total):
            preferred_prefix = len(chosen)
        if total >= cap:
            full = True
            break
        if len(chosen) == policy.exact_batch_requests:
            break
    if policy.exact_batch_requests is not None:
        if full or draining or len(chosen) == policy.exact_batch_requests:
            return Dispatch(tuple(chosen))
        return Wait(None)
    if full or draining:
        return Dispatch(tuple(chosen))
    if preferred_prefix:
        return Dispatch(tuple(chosen[:preferred_prefix]))
    deadline = head.enqueued_at + policy.max_queue_delay_s
    if now >= deadline:
        return Dispatch(tuple(chosen))
    return Wait(deadline)
