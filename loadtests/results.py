"""Benchmark results: repeated measurements reduced to medians, and the figures derived from them."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from loadtests.httpload import LoadResult

ARMS = {
    "floor": "bare FastAPI endpoint (floor)",
    "off": "nnserve, batching off",
    "on": "nnserve, batching on",
    "logged": "nnserve, batching on, access log on",
}
"""Served arms in the order tables and plots show them. The floor writes no line per request, and so
neither do "off" and "on" (`NNSERVE_ACCESS_LOG=false`); "logged" is "on" with the default access log."""
CLIENT_BOUND = 0.9
"""Client CPU share (of its core) from which a point measures the client more than the server."""


@dataclass(frozen=True)
class RawPoint:
    """Raw ONNX Runtime at one batch size: medians over repeats; latencies per `session.run` call."""

    batch: int
    samples_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    wait: float
    """Share of the run the process sat ready but waiting for a CPU held by a neighbour."""


@dataclass(frozen=True)
class Sample:
    """One closed-loop run plus the CPU both sides used during it (fractions of one core)."""

    load: LoadResult
    server_cpu: float
    server_wait: float
    """Run-queue wait of the server's threads: time they were ready but a neighbour held the CPU."""
    client_cpu: float
    client_wait: float
    bystander_cpu: float
    """CPU the other, idle servers used meanwhile: should be near zero."""


@dataclass(frozen=True)
class ServedPoint:
    """One arm at one concurrency: medians over repeats."""

    arm: str
    concurrency: int
    throughput: float
    throughput_min: float
    throughput_max: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    server_cpu: float
    server_wait: float
    client_cpu: float
    client_wait: float
    bystander_cpu: float
    errors: int
    first_error: str

    @property
    def client_bound(self) -> bool:
        return self.client_cpu >= CLIENT_BOUND

    @property
    def cpu_us_per_request(self) -> float:
        """Server CPU time per answered request: unlike throughput, barely moved by a busy neighbour."""
        return self.server_cpu / self.throughput * 1e6 if self.throughput else float("nan")


def _percentiles_ms(latencies_s: list[float]) -> tuple[float, float, float]:
    if not latencies_s:
        return (float("nan"),) * 3
    p50, p95, p99 = np.percentile(np.asarray(latencies_s) * 1000.0, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def reduce_raw(records: list[dict[str, float]]) -> list[RawPoint]:
    """Median of each figure over repeats, per batch size (records as raw_runtime prints them)."""
    points = []
    for batch in sorted({int(r["batch"]) for r in records}):
        runs = [r for r in records if r["batch"] == batch]
        points.append(
            RawPoint(
                batch=batch,
                samples_per_s=statistics.median(r["samples_per_s"] for r in runs),
                p50_ms=statistics.median(r["p50_s"] for r in runs) * 1000,
                p95_ms=statistics.median(r["p95_s"] for r in runs) * 1000,
                p99_ms=statistics.median(r["p99_s"] for r in runs) * 1000,
                wait=statistics.median(r["wait_fraction"] for r in runs),
            )
        )
    return points


def reduce_served(arm: str, concurrency: int, samples: list[Sample]) -> ServedPoint:
    percentiles = [_percentiles_ms(s.load.latencies_s) for s in samples]
    throughputs = [s.load.throughput for s in samples]
    return ServedPoint(
        arm=arm,
        concurrency=concurrency,
        throughput=statistics.median(throughputs),
        throughput_min=min(throughputs),
        throughput_max=max(throughputs),
        p50_ms=statistics.median(p[0] for p in percentiles),
        p95_ms=statistics.median(p[1] for p in percentiles),
        p99_ms=statistics.median(p[2] for p in percentiles),
        server_cpu=statistics.median(s.server_cpu for s in samples),
        server_wait=statistics.median(s.server_wait for s in samples),
        client_cpu=statistics.median(s.client_cpu for s in samples),
        client_wait=statistics.median(s.client_wait for s in samples),
        bystander_cpu=max(s.bystander_cpu for s in samples),
        errors=sum(s.load.errors for s in samples),
        first_error=next((s.load.first_error for s in samples if s.load.first_error), ""),
    )


@dataclass
class ModelResult:
    model: str
    unit: str
    raw: list[RawPoint] = field(default_factory=list)
    served: list[ServedPoint] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def raw_batch1(self) -> RawPoint | None:
        return next((p for p in self.raw if p.batch == 1), None)

    @property
    def raw_best(self) -> RawPoint | None:
        return max(self.raw, key=lambda p: p.samples_per_s, default=None)

    def point(self, arm: str, concurrency: int) -> ServedPoint | None:
        return next((p for p in self.served if p.arm == arm and p.concurrency == concurrency), None)

    def arms(self) -> list[str]:
        present = {p.arm for p in self.served}
        return [arm for arm in ARMS if arm in present]

    def concurrencies(self) -> list[int]:
        return sorted({p.concurrency for p in self.served})

    def overhead_ms(self, arm: str) -> float | None:
        """Served p50 at concurrency 1 minus raw batch-1 p50: what the server adds to one request."""
        point, raw = self.point(arm, 1), self.raw_batch1
        return point.p50_ms - raw.p50_ms if point and raw else None

    def batching_gain(self, concurrency: int) -> float | None:
        on, off = self.point("on", concurrency), self.point("off", concurrency)
        return on.throughput / off.throughput if on and off and off.throughput else None

    def efficiency(self, arm: str, concurrency: int, raw: RawPoint | None) -> float | None:
        """Served throughput over a raw ONNX Runtime throughput (same threads, same cores)."""
        point = self.point(arm, concurrency)
        return point.throughput / raw.samples_per_s if point and raw else None


@dataclass
class BenchRun:
    """Everything a report is made from, so a saved run can be rendered again without measuring."""

    machine: dict[str, str]
    setup: dict[str, str]
    reproduce: str
    results: list[ModelResult]


def load_run(path: Path) -> BenchRun:
    """A run saved with `--json`."""
    data = orjson.loads(path.read_bytes())
    results = [
        ModelResult(
            model=r["model"],
            unit=r["unit"],
            raw=[RawPoint(**p) for p in r["raw"]],
            served=[ServedPoint(**p) for p in r["served"]],
            notes=r["notes"],
        )
        for r in data["results"]
    ]
    return BenchRun(data["machine"], data["setup"], data["reproduce"], results)
