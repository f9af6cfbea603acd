"""What a request gets back: an async stream of text deltas, then a final result."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

FinishReason = Literal["length", "eos_token", "stop_sequence", "cancelled"]
"""length: max_tokens reached; eos_token: the model ended the text; stop_sequence: a stop string was
found (and cut); cancelled: the client went away (nobody reads this one but the statistics)."""


@dataclass(frozen=True)
class GenerationResult:
    text: str
    """Exactly the concatenation of the deltas streamed."""
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    """Tokens sampled, an end-of-text token included."""
    time_to_first_token_s: float | None
    """From submission to the first sampled token (queueing and prefill); None if cancelled before."""
    time_per_output_token_s: float | None
    """Mean time between consecutive tokens after the first; None with fewer than two tokens."""
    total_s: float


@dataclass(frozen=True)
class _Done:
    result: GenerationResult


@dataclass(frozen=True)
class _Failed:
    error: BaseException


class GenerationStream:
    """`async for delta in stream` yields text as it is generated; afterwards `stream.result` is set.

    Deltas are never empty and never cut a character or hold the start of a stop string. A failure of
    the model is raised from the iteration. `cancel()` (a client that went away) takes the sequence out
    of the batch at the next step.
    """

    def __init__(self, on_cancel: Callable[[], None]) -> None:
        self._events: asyncio.Queue[str | _Done | _Failed] = asyncio.Queue()
        self._on_cancel = on_cancel
        self._ended = False
        self.cancelled = False
        self.result: GenerationResult | None = None

    def __aiter__(self) -> GenerationStream:
        return self

    async def __anext__(self) -> str:
        if self._ended:
            raise StopAsyncIteration
        event = await self._events.get()
        if isinstance(event, str):
            return event
        self._ended = True
        if isinstance(event, _Failed):
            raise event.error
        self.result = event.result
        raise StopAsyncIteration

    async def collect(self) -> GenerationResult:
        """Wait for the end and return the result (the deltas are in `result.text`)."""
        async for _ in self:
            pass
        if self.result is None:
            raise RuntimeError("generation stream ended without a result")
        return self.result

    def cancel(self) -> None:
        """The client went away: the engine drops the sequence at its next step boundary."""
        if not self.cancelled:
            self.cancelled = True
            self._on_cancel()

    # Engine side.
    def emit(self, delta: str) -> None:
        if delta:
            self._events.put_nowait(delta)

    def finish(self, result: GenerationResult) -> None:
        self._events.put_nowait(_Done(result))

    def fail(self, error: BaseException) -> None:
        self._events.put_nowait(_Failed(error))
