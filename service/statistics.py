"""The v2 statistics extension (PROTOCOLS.md section 4), fed by the batcher's observer hook.

Counted as Triton does, so average batch size = inference_count / execution_count:
- `inference_count` counts samples (batch elements) of successful executions, `execution_count` the
  executions themselves;
- `success`, `queue` and `compute_*` count successful requests; each request of a batch is charged the
  whole batch's compute time, and `success` holds queue plus compute time;
- `fail` counts requests that got no answer (a failed run, refused on a full queue, past the deadline,
  client gone, also while its batch ran) with the time they spent;
- `batch_stats` counts executions per batch size, charged once per execution.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from service.batching.observer import BatchReport, DropReason

_NS = 1_000_000_000


@dataclass
class _Duration:
    count: int = 0
    ns: int = 0

    def add(self, seconds: float, count: int = 1) -> None:
        self.count += count
        self.ns += round(seconds * _NS)

    def to_json(self) -> dict[str, int]:
        return {"count": self.count, "ns": self.ns}


@dataclass
class _BatchStats:
    compute_input: _Duration = field(default_factory=_Duration)
    compute_infer: _Duration = field(default_factory=_Duration)
    compute_output: _Duration = field(default_factory=_Duration)


class ModelStatistics:
    """Cumulative statistics of one model version; implements the batcher's `BatchObserver`."""

    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version
        self._lock = threading.Lock()
        self._inference_count = 0
        self._execution_count = 0
        self._last_inference_ms = 0
        self._success = _Duration()
        self._fail = _Duration()
        self._queue = _Duration()
        self._compute_input = _Duration()
        self._compute_infer = _Duration()
        self._compute_output = _Duration()
        self._batches: dict[int, _BatchStats] = {}

    def queue_depth_changed(self, delta: int) -> None:
        """Queue depth is a gauge (metrics), not a cumulative statistic: nothing to record."""

    def batch_executed(self, report: BatchReport) -> None:
        with self._lock:
            if report.error is not None:
                for request in report.requests:
                    self._fail.add(request.queue_s + report.compute_s)
                return
            self._inference_count += report.size
            self._execution_count += 1
            self._last_inference_ms = time.time_ns() // 1_000_000
            for request in report.requests:
                if not request.answered:  # executed, but its client left before the answer
                    self._fail.add(request.queue_s + report.compute_s)
                    continue
                self._success.add(request.queue_s + report.compute_s)
                self._queue.add(request.queue_s)
                self._compute_input.add(report.compute_input_s)
                self._compute_infer.add(report.compute_infer_s)
                self._compute_output.add(report.compute_output_s)
            batch = self._batches.setdefault(report.size, _BatchStats())
            batch.compute_input.add(report.compute_input_s)
            batch.compute_infer.add(report.compute_infer_s)
            batch.compute_output.add(report.compute_output_s)

    def request_dropped(self, reason: DropReason, waited_s: float) -> None:
        with self._lock:
            self._fail.add(waited_s)

    def to_json(self) -> dict[str, Any]:
        """One `model_stats` entry, exactly as Triton's statistics extension writes it."""
        with self._lock:
            return {
                "name": self.name,
                "version": self.version,
                "last_inference": self._last_inference_ms,
                "inference_count": self._inference_count,
                "execution_count": self._execution_count,
                "inference_stats": {
                    "success": self._success.to_json(),
                    "fail": self._fail.to_json(),
                    "queue": self._queue.to_json(),
                    "compute_input": self._compute_input.to_json(),
                    "compute_infer": self._compute_infer.to_json(),
                    "compute_output": self._compute_output.to_json(),
                    "cache_hit": _Duration().to_json(),
                    "cache_miss": _Duration().to_json(),
                },
                "response_stats": {},
                "memory_usage": [],
                "batch_stats": [
                    {
                        "batch_size": size,
                        "compute_input": stats.compute_input.to_json(),
                        "compute_infer": stats.compute_infer.to_json(),
                        "compute_output": stats.compute_output.to_json(),
                    }
                    for size, stats in sorted(self._batches.items())
                ],
            }


class Statistics:
    """Statistics of every loaded model version of one app."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[tuple[str, str], ModelStatistics] = {}

    def model(self, name: str, version: str) -> ModelStatistics:
        """The (created on first use) statistics of a version: pass it to its batchers as an observer."""
        with self._lock:
            return self._models.setdefault((name, version), ModelStatistics(name, version))

    def to_json(
        self,
        name: str | None = None,
        version: str | None = None,
        served: Collection[tuple[str, str]] | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        """Body of GET /v2/models[/{name}[/versions/{version}]]/stats; an empty list when nothing matches.

        `served` ((name, version) pairs) limits the answer to versions serving now, as Triton reports
        only loaded models; a version reloaded in place keeps counting.
        """
        with self._lock:
            selected = [
                stats
                for key, stats in self._models.items()
                if (name is None or key[0] == name)
                and (version is None or key[1] == version)
                and (served is None or key in served)
            ]
        selected.sort(key=lambda s: (s.name, int(s.version) if s.version.isdigit() else -1, s.version))
        return {"model_stats": [stats.to_json() for stats in selected]}
