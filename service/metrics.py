"""Prometheus metrics, defined once, labelled by model and version (DESIGN section 6).

Every metric lives in a registry owned by one `Metrics` object (one per app), not in module globals, so
several apps can run in one process (tests) without "Duplicated timeseries" errors. Reference table:
docs/batching.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder

from service.batching.observer import BatchReport, DropReason

STAGE_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Queue and inference time: a small model runs in tens of microseconds, a big batch in seconds."""
REQUEST_BUCKETS = (*STAGE_BUCKETS, 30.0, 60.0)
"""Whole requests, including generation streams that last tens of seconds."""
BATCH_SIZE_BUCKETS = tuple(float(2**i) for i in range(9))
"""1, 2, 4, ..., 256 samples per execution."""
FIRST_TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PER_TOKEN_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

MODEL = ("model", "version")


class Metrics:
    """All of one app's metrics and the registry that `render` exposes at GET /metrics."""

    def __init__(self, *, process_collectors: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        if process_collectors:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        self.requests = Counter(
            "nnserve_requests",
            "Requests answered, by endpoint, HTTP status code (its HTTP equivalent for gRPC) and protocol.",
            [*MODEL, "endpoint", "code", "protocol"],
            registry=r,
        )
        self.request_duration = Histogram(
            "nnserve_request_duration_seconds",
            "Time from receiving a request to sending its response.",
            [*MODEL, "endpoint", "protocol"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.queue_duration = Histogram(
            "nnserve_queue_duration_seconds",
            "Time a request waited in the batch queue before its batch ran.",
            MODEL,
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.inference_duration = Histogram(
            "nnserve_inference_duration_seconds",
            "Time of one model execution (one batch) in ONNX Runtime.",
            MODEL,
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "nnserve_batch_size",
            "Samples per model execution.",
            MODEL,
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "nnserve_queue_depth",
            "Requests waiting in the batch queues of a model version (all instances).",
            MODEL,
            registry=r,
        )
        self.dropped_requests = Counter(
            "nnserve_dropped_requests",
            "Requests that left the batcher without running, by reason.",
            [*MODEL, "reason"],
            registry=r,
        )
        self.model_ready = Gauge(
            "nnserve_model_ready",
            "1 when the model version is loaded and serving, else 0.",
            [*MODEL, "provider"],
            registry=r,
        )
        self.generated_tokens = Counter(
            "nnserve_generated_tokens", "Tokens produced by text generation.", MODEL, registry=r
        )
        self.time_to_first_token = Histogram(
            "nnserve_time_to_first_token_seconds",
            "Time from a generation request to its first token.",
            MODEL,
            buckets=FIRST_TOKEN_BUCKETS,
            registry=r,
        )
        self.time_per_output_token = Histogram(
            "nnserve_time_per_output_token_seconds",
            "Time between consecutive generated tokens of a sequence.",
            MODEL,
            buckets=PER_TOKEN_BUCKETS,
            registry=r,
        )
        self.active_sequences = Gauge(
            "nnserve_active_sequences", "Sequences being generated right now.", MODEL, registry=r
        )
        self.requests_in_flight = Gauge(
            "nnserve_requests_in_flight",
            "Requests being handled now (a streamed answer counts until its last byte); drains to 0 on "
            "shutdown.",
            registry=r,
        )
        self._providers: dict[tuple[str, str], str] = {}
        self._request_series: dict[tuple[str, str, str, int, str], tuple[Any, Any]] = {}
        """Children of the request metrics by label values: `labels()` costs more than the update."""

    def track_in_flight(self, count: Callable[[], int]) -> None:
        """Read the in-flight gauge from `count` at scrape time (no gauge update per request)."""
        self.requests_in_flight.set_function(count)

    def observe_request(
        self, *, model: str, version: str, endpoint: str, code: int, seconds: float, protocol: str = "http"
    ) -> None:
        """Count one answered request and its latency; use model="" for requests naming no known model.

        Callers pass only bounded label values (route or RPC names, models the repository knows,
        `http` or `grpc`).
        """
        key = (model, version, endpoint, code, protocol)
        series = self._request_series.get(key)
        if series is None:
            series = self._request_series[key] = (
                self.requests.labels(model, version, endpoint, str(code), protocol),
                self.request_duration.labels(model, version, endpoint, protocol),
            )
        series[0].inc()
        series[1].observe(seconds)

    def set_model_ready(self, *, model: str, version: str, provider: str, ready: bool) -> None:
        """Publish readiness; a reload on another provider replaces the old provider's series."""
        previous = self._providers.get((model, version))
        if previous is not None and previous != provider:
            self.model_ready.remove(model, version, previous)
        self._providers[(model, version)] = provider
        self.model_ready.labels(model, version, provider).set(1 if ready else 0)

    def sync_model_ready(self, states: Mapping[tuple[str, str], tuple[str, bool]]) -> None:
        """Publish every version's readiness, (model, version) -> (provider, ready), as the repository
        has it now; series of versions it no longer lists (replaced, unloaded on purpose) are removed."""
        for (model, version), (provider, ready) in states.items():
            self.set_model_ready(model=model, version=version, provider=provider, ready=ready)
        for model, version in [key for key in self._providers if key not in states]:
            self.model_ready.remove(model, version, self._providers.pop((model, version)))

    def batch_observer(self, model: str, version: str) -> BatchMetrics:
        """The batcher hook for one model version (share it between that version's instances)."""
        return BatchMetrics(self, model, version)

    def generation(self, model: str, version: str) -> GenerationMetrics:
        return GenerationMetrics(self, model, version)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """Body and Content-Type for GET /metrics, in the format the scraper's Accept header asks for."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class BatchMetrics:
    """Implements the batcher's `BatchObserver` hook for one model version."""

    def __init__(self, metrics: Metrics, model: str, version: str) -> None:
        self._metrics = metrics
        self._labels = (model, version)
        self._queue_duration = metrics.queue_duration.labels(model, version)
        self._inference_duration = metrics.inference_duration.labels(model, version)
        self._batch_size = metrics.batch_size.labels(model, version)
        self._queue_depth = metrics.queue_depth.labels(model, version)

    def queue_depth_changed(self, delta: int) -> None:
        self._queue_depth.inc(delta)

    def batch_executed(self, report: BatchReport) -> None:
        for request in report.requests:
            self._queue_duration.observe(request.queue_s)
        self._inference_duration.observe(report.compute_infer_s)
        self._batch_size.observe(report.size)

    def request_dropped(self, reason: DropReason, waited_s: float) -> None:
        self._metrics.dropped_requests.labels(*self._labels, reason).inc()


class GenerationMetrics:
    """Token-level metrics of one generating model version."""

    def __init__(self, metrics: Metrics, model: str, version: str) -> None:
        self._tokens = metrics.generated_tokens.labels(model, version)
        self._first_token = metrics.time_to_first_token.labels(model, version)
        self._per_token = metrics.time_per_output_token.labels(model, version)
        self._active = metrics.active_sequences.labels(model, version)

    def tokens_generated(self, count: int) -> None:
        self._tokens.inc(count)

    def first_token(self, seconds: float) -> None:
        self._first_token.observe(seconds)

    def next_token(self, seconds: float) -> None:
        """Time since the sequence's previous token."""
        self._per_token.observe(seconds)

    def sequence_started(self) -> None:
        self._active.inc()

    def sequence_finished(self) -> None:
        self._active.dec()
