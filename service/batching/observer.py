"""The batcher's reporting hook: metrics and statistics plug in here without the batcher knowing them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

DropReason = Literal["queue_full", "deadline", "cancelled"]
"""Why a request left without being run: refused on a full queue, past its deadline, client went away."""


@dataclass(frozen=True)
class RequestTiming:
    samples: int
    queue_s: float
    """From `submit` to the moment its batch was handed to the executor."""
    answered: bool = True
    """False when its client went away while the batch ran: executed, but not a success."""


@dataclass(frozen=True)
class BatchReport:
    """One execution of the model, successful or not.

    `compute_input_s` covers concatenation and padding, `compute_infer_s` the model call and
    `compute_output_s` the split back per request (Triton's compute_input/infer/output).
    """

    requests: tuple[RequestTiming, ...]
    compute_input_s: float
    compute_infer_s: float
    compute_output_s: float
    error: BaseException | None = None

    @property
    def size(self) -> int:
        """Samples executed together: the batch size the model saw."""
        return sum(r.samples for r in self.requests)

    @property
    def compute_s(self) -> float:
        return self.compute_input_s + self.compute_infer_s + self.compute_output_s


class BatchObserver(Protocol):
    """Called on the event loop's thread; implementations must be quick and must not raise."""

    def queue_depth_changed(self, delta: int) -> None:
        """Requests waiting changed by `delta` (+1 enqueued, -n taken or dropped); sum over instances."""

    def batch_executed(self, report: BatchReport) -> None:
        """A batch ran (or failed while running); every request in it shares the outcome."""

    def request_dropped(self, reason: DropReason, waited_s: float) -> None:
        """A request left without being run, after `waited_s` seconds in the queue (0 if refused)."""
