"""The engine's reporting: a hook for metrics, and statistics of what was decoded together."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from service.generation.stream import FinishReason, GenerationResult

StepKind = Literal["prefill", "decode"]


@dataclass(frozen=True)
class StepReport:
    """One model run of the engine."""

    kind: StepKind
    sequences: int
    """Rows in the batch: sequences prefilled together, or decoded together in lock-step."""
    tokens: int
    """Real tokens fed (padding excluded)."""
    seconds: float
    """Time of the model run alone, in its worker thread, as seen from the event loop."""


class GenerationObserver(Protocol):
    """Called on the event loop's thread; implementations must be quick and must not raise."""

    def step_executed(self, report: StepReport) -> None:
        """A prefill or decode step ran."""

    def first_token(self, seconds: float) -> None:
        """A sequence got its first token `seconds` after it was submitted (time to first token)."""

    def sequence_finished(self, result: GenerationResult) -> None:
        """A sequence ended (its generated tokens and time per output token are in `result`)."""

    def active_changed(self, active: int) -> None:
        """Sequences in the decode batch changed to `active`."""


@dataclass
class EngineStatistics:
    """Counts since the engine started; `decode_batch_sizes` shows how many sequences shared each step."""

    requests: int = 0
    generated_tokens: int = 0
    prefill_runs: int = 0
    decode_steps: int = 0
    prefill_batch_sizes: Counter[int] = field(default_factory=Counter)
    """Sequences per prefill run -> number of runs."""
    decode_batch_sizes: Counter[int] = field(default_factory=Counter)
    """Sequences per decode step -> number of steps."""
    finish_reasons: Counter[FinishReason] = field(default_factory=Counter)

    def record_step(self, report: StepReport) -> None:
        if report.kind == "prefill":
            self.prefill_runs += 1
            self.prefill_batch_sizes[report.sequences] += 1
        else:
            self.decode_steps += 1
            self.decode_batch_sizes[report.sequences] += 1

    def record_finish(self, result: GenerationResult) -> None:
        self.generated_tokens += result.completion_tokens
        self.finish_reasons[result.finish_reason] += 1

    @property
    def max_decode_batch(self) -> int:
        return max(self.decode_batch_sizes, default=0)

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready view (keys as strings), e.g. for a statistics endpoint."""
        return {
            "requests": self.requests,
            "generated_tokens": self.generated_tokens,
            "prefill_runs": self.prefill_runs,
            "decode_steps": self.decode_steps,
            "max_decode_batch": self.max_decode_batch,
            "prefill_batch_sizes": {str(k): v for k, v in sorted(self.prefill_batch_sizes.items())},
            "decode_batch_sizes": {str(k): v for k, v in sorted(self.decode_batch_sizes.items())},
            "finish_reasons": dict(self.finish_reasons),
        }
