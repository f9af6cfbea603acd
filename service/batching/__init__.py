"""Dynamic batching per model instance (knows no HTTP); see docs/batching.md."""

from service.batching.batcher import Batcher, RunBatch
from service.batching.errors import (
    BatcherError,
    BatcherStoppedError,
    BatchExecutionError,
    BatchOutputError,
    DeadlineExceededError,
    InputRejectedError,
    InvalidInputError,
    QueueFullError,
)
from service.batching.observer import BatchObserver, BatchReport, DropReason, RequestTiming
from service.batching.padding import NO_PADDING, SequencePadding, Tensors
from service.batching.policy import BatchPolicy
from service.batching.pool import BatcherPool

__all__ = [
    "NO_PADDING",
    "BatchExecutionError",
    "BatchObserver",
    "BatchOutputError",
    "BatchPolicy",
    "BatchReport",
    "Batcher",
    "BatcherError",
    "BatcherPool",
    "BatcherStoppedError",
    "DeadlineExceededError",
    "DropReason",
    "InputRejectedError",
    "InvalidInputError",
    "QueueFullError",
    "RequestTiming",
    "RunBatch",
    "SequencePadding",
    "Tensors",
]
