"""Why a request did not get an answer from the batcher.

The HTTP layer maps these onto status codes in its one error table; the batcher itself knows no HTTP.
"""

from __future__ import annotations


class BatcherError(Exception):
    """Base class of every error the batcher raises on a request's behalf."""


class InvalidInputError(BatcherError, ValueError):
    """The request's tensors cannot be batched (no samples, ragged batch axis, mismatched lengths).

    Raised by `submit` before enqueueing, so a malformed request never reaches a batch.
    """


class InputRejectedError(BatcherError, ValueError):
    """The model refused this request's values while running (e.g. a token id past the vocabulary).

    Raised by a batch's run function; the batcher passes it to the request only when the run held that
    request alone (a batch that fails is re-run one request at a time first), so it is never another
    client's fault and its message is safe to return.
    """


class QueueFullError(BatcherError):
    """The queue is at `max_queue_size`; the request was refused at once and never queued."""

    def __init__(self, queued: int, retry_after_s: float) -> None:
        self.queued = queued
        self.retry_after_s = retry_after_s
        super().__init__(f"queue full ({queued} requests waiting); retry after {retry_after_s:.3f} s")


class DeadlineExceededError(BatcherError):
    """The request's deadline passed before it was executed; it was never run."""

    def __init__(self, waited_s: float) -> None:
        self.waited_s = waited_s
        super().__init__(f"deadline exceeded after waiting {waited_s * 1000:.1f} ms in the queue")


class BatchExecutionError(BatcherError):
    """The batch's model run failed; every request of that batch gets its own copy of this error.

    The original exception is chained as `__cause__`. `error_id` names the batch's failure in the log
    (logged once per batch, with the traceback), so an answer can point at it without repeating a cause
    that may describe another request's data.
    """

    def __init__(self, message: str, error_id: str = "") -> None:
        self.error_id = error_id
        super().__init__(message)


class BatchOutputError(BatchExecutionError):
    """The model ran but its outputs cannot be split back per request (wrong batch or sequence axis)."""


class BatcherStoppedError(BatcherError):
    """The batcher is stopping or stopped (model unloading, server shutting down)."""
