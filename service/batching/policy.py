"""How a batcher decides when to run: the model's `batching:` settings plus the test-only switch."""

from __future__ import annotations

from dataclasses import dataclass

from service.schema.config import BatchingSettings


@dataclass(frozen=True)
class BatchPolicy:
    """Scheduling knobs of one batcher.

    `exact_batch_requests` is the determinism switch (Triton's `TRITONSERVER_DELAY_SCHEDULER`): when
    set, the collector ignores `max_queue_delay_ms` and preferred sizes and waits until exactly that many
    compatible requests are queued (or `max_batch_size` samples, or a stop) before running them together,
    so tests can assert the batch sizes actually executed. Never set it in production: a lone request
    would wait until its deadline.

    `isolate_failures`: a batch whose run fails runs again one request at a time, so one request's bad
    values (a token id past the vocabulary) fail that request alone instead of everyone batched with it.
    Off, every request of a failed batch gets the failure.
    """

    max_batch_size: int = 32
    max_queue_delay_s: float = 0.0
    max_queue_size: int = 256
    preferred_batch_sizes: tuple[int, ...] = ()
    default_timeout_s: float | None = None
    exact_batch_requests: int | None = None
    isolate_failures: bool = False

    def __post_init__(self) -> None:
        if self.max_batch_size < 0:
            raise ValueError(f"max_batch_size must be >= 0, got {self.max_batch_size}")
        if self.max_queue_delay_s < 0:
            raise ValueError(f"max_queue_delay_s must be >= 0, got {self.max_queue_delay_s}")
        if self.max_queue_size < 1:
            raise ValueError(f"max_queue_size must be >= 1, got {self.max_queue_size}")
        if any(size < 1 for size in self.preferred_batch_sizes):
            raise ValueError(
                f"preferred_batch_sizes must be positive, got {list(self.preferred_batch_sizes)}"
            )
        if self.default_timeout_s is not None and self.default_timeout_s <= 0:
            raise ValueError(f"default_timeout_s must be > 0, got {self.default_timeout_s}")
        if self.exact_batch_requests is not None and self.exact_batch_requests < 1:
            raise ValueError(f"exact_batch_requests must be >= 1, got {self.exact_batch_requests}")

    @classmethod
    def from_settings(
        cls,
        settings: BatchingSettings,
        *,
        default_timeout_s: float | None = None,
        exact_batch_requests: int | None = None,
        isolate_failures: bool = False,
    ) -> BatchPolicy:
        """The policy for a model's `batching:` section.

        `default_timeout_s` is the server-wide deadline used when the model's `timeout_ms` is unset.
        """
        timeout_s = settings.timeout_ms / 1000 if settings.timeout_ms is not None else default_timeout_s
        return cls(
            max_batch_size=settings.max_batch_size,
            max_queue_delay_s=settings.max_queue_delay_ms / 1000,
            max_queue_size=settings.max_queue_size,
            preferred_batch_sizes=tuple(sorted(set(settings.preferred_batch_sizes))),
            default_timeout_s=timeout_s,
            exact_batch_requests=exact_batch_requests,
            isolate_failures=isolate_failures,
        )

    @property
    def batching_enabled(self) -> bool:
        return self.max_batch_size > 1

    @property
    def sample_cap(self) -> int:
        """Samples one execution may hold; a single larger request still runs, alone."""
        return max(1, self.max_batch_size)

    def is_preferred(self, samples: int) -> bool:
        return samples in self.preferred_batch_sizes
