"""PNG plots of one model's benchmark: throughput and latency percentiles against concurrency."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from loadtests.results import ARMS, ModelResult

COLORS = {"floor": "tab:gray", "off": "tab:orange", "on": "tab:blue", "logged": "tab:green"}
PERCENTILE_STYLES = {"p50_ms": "o-", "p95_ms": "s--", "p99_ms": "^:"}
"""Marker then line style; colour tells the arm, style the percentile."""


def plot_model(result: ModelResult, path: Path) -> Path:
    """Two panels: throughput (with raw ONNX Runtime as reference lines) and p50/p95/p99 latency."""
    concurrencies = result.concurrencies()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for arm in result.arms():
        points = [result.point(arm, c) for c in concurrencies]
        xs = [c for c, p in zip(concurrencies, points, strict=True) if p]
        served = [p for p in points if p]
        left.plot(xs, [p.throughput for p in served], "o-", color=COLORS[arm], label=ARMS[arm])
        for attr, style in PERCENTILE_STYLES.items():
            right.plot(xs, [getattr(p, attr) for p in served], style, color=COLORS[arm])
    for raw, style, name in (
        (result.raw_batch1, ":", "raw ONNX Runtime, batch 1"),
        (result.raw_best, "--", "raw ONNX Runtime, best batch"),
    ):
        if raw is not None:
            left.axhline(raw.samples_per_s, linestyle=style, color="black", label=f"{name} ({raw.batch})")
    left.set(
        xscale="log", yscale="log", xlabel="concurrent clients", ylabel=f"{result.unit}s per second",
        title=f"{result.model}: throughput",
    )  # fmt: skip
    right.set(
        xscale="log", yscale="log", xlabel="concurrent clients", ylabel="latency (ms)",
        title=f"{result.model}: latency p50 / p95 / p99",
    )  # fmt: skip
    for axis in (left, right):
        axis.set_xticks(concurrencies, [str(c) for c in concurrencies])
        axis.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.yaxis.set_minor_formatter(NullFormatter())
        axis.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7)
    handles = [Line2D([], [], color=COLORS[arm], label=ARMS[arm]) for arm in result.arms()]
    handles += [
        Line2D([], [], color="black", linestyle=s[1:], marker=s[0], label=a[:3]) for a, s in PERCENTILE_STYLES.items()
    ]
    right.legend(handles=handles, fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
