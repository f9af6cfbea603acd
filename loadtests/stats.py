"""Locust's final statistics as one row per endpoint, the limits checked on them, and a summary table.

Read from locust's `--json-file`, which it writes after every user has stopped, so the verdict counts
every request; its periodic CSV can miss the last second. Percentiles are computed from the response
time histogram exactly as locust computes them for its own reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from loadtests.streaming import TTFT

AGGREGATE = "Aggregated"


@dataclass(frozen=True)
class EndpointStats:
    """One endpoint (locust's request type and name); latencies in milliseconds."""

    type: str
    name: str
    requests: int
    failures: int
    rps: float
    p50: float
    p95: float
    p99: float
    max: float

    @property
    def is_aggregate(self) -> bool:
        return self.name == AGGREGATE and not self.type

    @property
    def is_ttft(self) -> bool:
        return self.type == TTFT


def percentile(histogram: dict[float, int], count: int, fraction: float) -> float:
    """Locust's percentile: walk the rounded response-time histogram down from the slowest bucket."""
    within = int(count * fraction)
    processed = 0
    for time_ms in sorted(histogram, reverse=True):
        processed += histogram[time_ms]
        if count - processed <= within:
            return time_ms
    return 0.0


def _row(type_: str, name: str, entries: list[dict[str, object]]) -> EndpointStats:
    histogram: dict[float, int] = {}
    for entry in entries:
        for time_ms, count in entry["response_times"].items():  # type: ignore[attr-defined]
            histogram[float(time_ms)] = histogram.get(float(time_ms), 0) + count
    requests = sum(int(e["num_requests"]) for e in entries)  # type: ignore[call-overload]
    started = min(float(e["start_time"]) for e in entries)  # type: ignore[arg-type]
    ended = max(float(e["last_request_timestamp"] or started) for e in entries)  # type: ignore[arg-type]
    return EndpointStats(
        type=type_,
        name=name,
        requests=requests,
        failures=sum(int(e["num_failures"]) for e in entries),  # type: ignore[call-overload]
        rps=requests / (ended - started) if ended > started else 0.0,
        p50=percentile(histogram, requests, 0.50),
        p95=percentile(histogram, requests, 0.95),
        p99=percentile(histogram, requests, 0.99),
        max=max((float(e["max_response_time"] or 0) for e in entries), default=0.0),  # type: ignore[arg-type]
    )


def read_final_stats(path: Path) -> list[EndpointStats]:
    """Per-endpoint rows sorted by name, then an aggregate of the real requests (TTFT rows left out)."""
    entries = json.loads(path.read_text(encoding="utf-8"))
    rows = [_row(e["method"], e["name"], [e]) for e in sorted(entries, key=lambda e: (e["name"], e["method"]))]
    requests = [e for e in entries if e["method"] != TTFT]
    return [*rows, _row("", AGGREGATE, requests)] if requests else rows


def check_limits(
    rows: list[EndpointStats], max_error_rate: float, max_p95_ms: float | None, max_ttft_p95_ms: float | None
) -> list[str]:
    """Broken limits, one sentence each; empty when the run passes.

    The error rate counts real requests only (TTFT rows are measurements, never failures). The p95
    limit applies to each endpoint, so a slow endpoint cannot hide behind a fast one in the aggregate.
    """
    requests = [r for r in rows if not r.is_aggregate and not r.is_ttft]
    total = sum(r.requests for r in requests)
    if total == 0:
        return ["no requests were made: is the server up, and do the chosen classes or tags match?"]
    problems = []
    failures = sum(r.failures for r in requests)
    if failures / total > max_error_rate:
        problems.append(f"error rate {failures / total:.2%} ({failures}/{total}) exceeds {max_error_rate:.2%}")
    for row in rows:
        if row.is_aggregate:
            continue
        limit = max_ttft_p95_ms if row.is_ttft else max_p95_ms
        if limit is not None and row.p95 > limit:
            problems.append(f"{row.type} {row.name}: p95 {row.p95:.0f} ms exceeds {limit:.0f} ms")
    return problems


def format_table(rows: list[EndpointStats]) -> str:
    header = ("type", "endpoint", "requests", "failures", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms")
    body = [
        (
            r.type,
            r.name,
            str(r.requests),
            str(r.failures),
            f"{r.rps:.1f}",
            *(f"{v:.0f}" for v in (r.p50, r.p95, r.p99, r.max)),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, body)])
