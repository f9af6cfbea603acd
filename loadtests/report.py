"""docs/benchmarks.md from benchmark results: goals first, then one section per model."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from loadtests.bench_gan import MARK_END as GAN_END
from loadtests.bench_gan import MARK_START as GAN_START
from loadtests.results import ARMS, BenchRun, ModelResult

IMAGE_MODEL, TEXT_MODEL = "digits-cnn", "text-transformer"
OVERHEAD_GOAL_MS = 0.3
EFFICIENCY_GOAL = 0.9
TAIL_GOAL = 2.0
TOP_CONCURRENCY = 64
CONTENDED_WAIT = 0.05
"""Median run-queue wait (cores) of the single-threaded server runs above which the report warns."""


@dataclass(frozen=True)
class Goal:
    name: str
    target: str
    measured: str
    passed: bool | None
    """None when the run lacks the points the goal needs."""

    @property
    def verdict(self) -> str:
        return {True: "met", False: "**missed**", None: "not measured"}[self.passed]


def _ms(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}" if value < 1 else f"{value:.2f}"


def _us(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.0f}"


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _by_model(results: list[ModelResult], name: str) -> ModelResult | None:
    return next((r for r in results if r.model == name), None)


def evaluate_goals(results: list[ModelResult], top: int = TOP_CONCURRENCY) -> list[Goal]:
    """The issue's goals, judged on the shipped configuration (batching on) without an access log, as
    the floor writes none; the default with one is quoted beside them."""
    goals = []
    image, text = _by_model(results, IMAGE_MODEL), _by_model(results, TEXT_MODEL)
    overhead = image.overhead_ms("on") if image else None
    goals.append(
        Goal(
            f"{IMAGE_MODEL}: server overhead at concurrency 1 (p50, served minus raw batch 1)",
            f"<= {OVERHEAD_GOAL_MS} ms",
            f"{_ms(overhead)} ms (batching off: {_ms(image.overhead_ms('off') if image else None)} ms, "
            f"access log on: {_ms(image.overhead_ms('logged') if image else None)} ms, "
            f"floor: {_ms(image.overhead_ms('floor') if image else None)} ms)",
            None if overhead is None else overhead <= OVERHEAD_GOAL_MS,
        )
    )
    best = text.efficiency("on", top, text.raw_best) if text else None
    versus_b1 = text.efficiency("on", top, text.raw_batch1) if text else None
    floor_b1 = text.efficiency("floor", top, text.raw_batch1) if text else None
    goals.append(
        Goal(
            f"{TEXT_MODEL}: throughput at concurrency {top} over raw ONNX Runtime (best batch, same threads)",
            f">= {EFFICIENCY_GOAL:.0%}",
            f"{_ratio(best)} (over raw batch 1: {_ratio(versus_b1)}; floor over raw batch 1: {_ratio(floor_b1)})",
            None if best is None else best >= EFFICIENCY_GOAL,
        )
    )
    on, floor = (image.point("on", top), image.point("floor", top)) if image else (None, None)
    logged = image.point("logged", top) if image else None
    on_rate, floor_rate = (on.throughput if on else None), (floor.throughput if floor else None)
    on_cpu, floor_cpu = (on.cpu_us_per_request if on else None), (floor.cpu_us_per_request if floor else None)
    goals.append(
        Goal(
            f"{IMAGE_MODEL}: throughput at concurrency {top} versus the bare FastAPI floor",
            ">= floor",
            f"{_rate(on_rate)} vs {_rate(floor_rate)} requests/s (server CPU per request: "
            f"{_us(on_cpu)} vs {_us(floor_cpu)} µs; access log on: "
            f"{_rate(logged.throughput if logged else None)} requests/s)",
            None if on_rate is None or floor_rate is None else on_rate >= floor_rate,
        )
    )
    for result in (r for r in results if r.served):
        point = result.point("on", top)
        ratio = point.p99_ms / point.p50_ms if point and point.p50_ms > 0 else None
        goals.append(
            Goal(
                f"{result.model}: tail at concurrency {top} (p99 over p50, batching on)",
                f"<= {TAIL_GOAL:.0f}x",
                "n/a"
                if ratio is None
                else f"{ratio:.2f}x ({_ms(point.p99_ms if point else None)} ms / "
                f"{_ms(point.p50_ms if point else None)} ms)",
                None if ratio is None else ratio <= TAIL_GOAL,
            )
        )
    return goals


def _table(header: list[str], rows: list[list[str]], text_columns: int = 1) -> list[str]:
    """A markdown table; the first `text_columns` columns align left, the (numeric) rest right."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i < text_columns else "---:" for i in range(len(header))) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _model_section(result: ModelResult, image: str | None) -> list[str]:
    lines = [f"## {result.model}", ""]
    lines += [f"> {note}" for note in result.notes] + ([""] if result.notes else [])
    if result.raw:
        lines += [
            f"Raw ONNX Runtime in-process (latency per `session.run` {result.unit} call of the whole batch):",
            "",
        ]
        lines += _table(
            ["batch", f"{result.unit}s/s", "p50 ms", "p95 ms", "p99 ms", "waiting"],
            [
                [
                    str(p.batch),
                    _rate(p.samples_per_s),
                    _ms(p.p50_ms),
                    _ms(p.p95_ms),
                    _ms(p.p99_ms),
                    f"{p.wait:.2f}",
                ]
                for p in result.raw
            ],
        )
        lines.append("")
    if result.served:
        lines += [
            "Served over HTTP (closed loop; medians over repeats and the throughput range; CPU and waiting in"
            " cores, where waiting is time ready to run but queued behind another thread: a neighbour's, or for"
            " the service also its own inference thread on the same pinned core):",
            "",
        ]
        rows = []
        for arm in result.arms():
            for c in result.concurrencies():
                p = result.point(arm, c)
                if p is None:
                    continue
                client = f"{p.client_cpu:.2f}" + (" (client-bound)" if p.client_bound else "")
                rows.append(
                    [
                        ARMS[arm],
                        str(c),
                        _rate(p.throughput),
                        f"{_rate(p.throughput_min)}–{_rate(p.throughput_max)}",
                        _ms(p.p50_ms),
                        _ms(p.p95_ms),
                        _ms(p.p99_ms),
                        f"{p.server_cpu:.2f}",
                        f"{p.server_wait:.2f}",
                        client,
                        f"{p.cpu_us_per_request:.0f}",
                        str(p.errors),
                    ]
                )
        lines += _table(
            [
                "arm",
                "clients",
                f"{result.unit}s/s",
                "range",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "server CPU",
                "server waiting",
                "client CPU",
                "server CPU µs/request",
                "errors",
            ],
            rows,
        )
        busiest = max(p.bystander_cpu for p in result.served)
        lines += ["", f"Idle arms used at most {busiest:.2f} cores while another arm was measured."]
        errors = sorted({p.first_error for p in result.served if p.first_error})
        lines += ["", *(f"First error seen: `{e[:200]}`" for e in errors[:3])] if errors else []
        lines.append("")
        lines += _derived(result)
    if image:
        lines += [f"![{result.model}: throughput and latency against concurrency]({image})", ""]
    return lines


def _derived(result: ModelResult) -> list[str]:
    concurrencies = result.concurrencies()
    rows = [
        ["server overhead at 1 client (p50 minus raw batch-1 p50), ms"]
        + [_ms(result.overhead_ms(arm)) for arm in result.arms()],
    ]
    top = max(concurrencies)
    rows.append(
        [f"efficiency at {top} clients over raw batch 1"]
        + [_ratio(result.efficiency(arm, top, result.raw_batch1)) for arm in result.arms()]
    )
    best = result.raw_best
    rows.append(
        [f"efficiency at {top} clients over raw best batch ({best.batch if best else 'n/a'})"]
        + [_ratio(result.efficiency(arm, top, best)) for arm in result.arms()]
    )
    lines = _table(["figure", *(ARMS[a] for a in result.arms())], rows)
    gains = [f"{c} clients: {g:.2f}x" for c in concurrencies if (g := result.batching_gain(c)) is not None]
    if gains:
        lines += ["", "Batching gain (throughput with batching over without): " + ", ".join(gains) + "."]
    return [*lines, ""]


def _contention_note(results: list[ModelResult]) -> list[str]:
    """A warning when neighbours took CPU time, judged on the single-threaded processes only.

    The service's own threads (event loop, inference worker) queue behind each other on a pinned core,
    so its waiting time is not a measure of neighbours; the raw runs and the floor have one busy thread.
    """
    waits = sorted(
        [p.wait for r in results for p in r.raw]
        + [p.server_wait for r in results for p in r.served if p.arm == "floor"]
    )
    client_waits = sorted(p.client_wait for r in results for p in r.served)
    if not waits or statistics.median(waits) <= CONTENDED_WAIT:
        return []
    return [
        f"> **Shared machine.** Other processes competed for the CPUs during this run: single-threaded server "
        f"runs (raw ONNX Runtime, the floor) sat ready but queued for a median {statistics.median(waits):.2f} "
        f"cores (up to {waits[-1]:.2f}), the load generator for {statistics.median(client_waits):.2f} (up to "
        f"{client_waits[-1]:.2f}). Throughput and latency, tails above all, are pessimistic and noisy; server "
        "CPU per request is the figure least moved by neighbours. Rerun on an idle machine for clean numbers.",
        "",
    ]


def render(run: BenchRun, images: dict[str, str]) -> str:
    results = run.results
    goals = evaluate_goals(results)
    contention = _contention_note(results)
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m loadtests.bench` (`make bench`); do not edit by hand, rerun instead. What the",
        "service costs on top of ONNX Runtime: the same work measured raw in-process (the limit), behind a",
        "bare FastAPI endpoint that calls `session.run` inline (the floor), and behind nnserve with dynamic",
        "batching off and on. The floor writes no log line per request, so neither do those two arms; a",
        "fourth arm runs with the default access log on. How the load is made and how to read the tables:",
        "[loadtests.md](loadtests.md).",
        "",
        *contention,
        "## Goals",
        "",
        *_table(
            ["goal", "target", "measured", "verdict"],
            [[g.name, g.target, g.measured, g.verdict] for g in goals],
        ),
        "",
        "## Machine and setup",
        "",
        *_table(["", ""], [[k, v] for k, v in {**run.machine, **run.setup}.items()], 2),
        "",
    ]
    for result in results:
        lines += _model_section(result, images.get(result.model))
    lines += ["## How to reproduce", "", "```sh", run.reproduce, "```", ""]
    return "\n".join(lines)


def write(path: Path, text: str) -> Path:
    """Write the report, keeping the image-generation section that `loadtests.bench_gan` wrote there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if GAN_START in old and GAN_END in old:
        text = text.rstrip("\n") + "\n\n" + GAN_START + old.split(GAN_START, 1)[1].split(GAN_END, 1)[0] + GAN_END + "\n"
    path.write_text(text, encoding="utf-8")
    return path
