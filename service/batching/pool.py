"""`instances: N`: N batchers (each with its own session) behind one submit, least-loaded first."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor

import numpy as np

from service.batching.batcher import Batcher, RunBatch
from service.batching.observer import BatchObserver
from service.batching.padding import NO_PADDING, SequencePadding, Tensors
from service.batching.policy import BatchPolicy
from service.schema.config import BatchingSettings


class BatcherPool:
    """Dispatches each request to the instance with the fewest requests queued or running."""

    def __init__(self, batchers: Sequence[Batcher]) -> None:
        if not batchers:
            raise ValueError("a batcher pool needs at least one batcher")
        self.batchers = tuple(batchers)

    @classmethod
    def create(
        cls,
        runs: Sequence[RunBatch],
        policy: BatchPolicy | BatchingSettings,
        executor: Executor,
        *,
        padding: SequencePadding = NO_PADDING,
        observers: Sequence[BatchObserver] = (),
        name: str = "batcher",
        inline: bool = False,
    ) -> BatcherPool:
        """One batcher per run callable (one per session); the executor needs >= len(runs) workers."""
        return cls(
            [
                Batcher(
                    run, policy, executor, padding=padding, observers=observers, name=f"{name}#{i}", inline=inline
                )
                for i, run in enumerate(runs)
            ]
        )

    @property
    def queued(self) -> int:
        return sum(b.queued for b in self.batchers)

    async def submit(self, inputs: Mapping[str, np.ndarray], *, deadline: float | None = None) -> Tensors:
        """As `Batcher.submit`, on the least-loaded instance (if even that one is full: QueueFullError)."""
        target = min(self.batchers, key=lambda b: b.queued + b.busy)
        return await target.submit(inputs, deadline=deadline)

    async def stop(self) -> None:
        """Stop every instance, draining their queues."""
        await asyncio.gather(*(b.stop() for b in self.batchers))
