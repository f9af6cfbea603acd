"""Raw ONNX Runtime in-process: the limit a server on the same cores could approach.

Run by the benchmark as a child pinned to the server's cores (`python -m loadtests.raw_runtime`), it
times back-to-back `session.run` calls (or greedy generations) at each batch size and prints one JSON
object per line: calls, samples per second and per-call latencies. No HTTP, no queue, no copies
beyond the feed dict: everything the service adds shows up as the difference.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson

from loadtests.workloads import PROVIDERS, load_workload, locate, open_session


def run_queue_wait_s() -> float:
    """Seconds this (single-threaded) run has waited for a CPU so far, from the kernel's schedstat."""
    try:
        return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):  # not Linux
        return 0.0


def time_calls(step: Callable[[], object], seconds: float, warmup_calls: int = 3) -> list[float]:
    """Per-call latencies (s) of `step()` repeated for about `seconds` after a short warm-up."""
    for _ in range(warmup_calls):
        step()
    latencies = []
    deadline = time.perf_counter() + seconds
    while (start := time.perf_counter()) < deadline:
        step()
        latencies.append(time.perf_counter() - start)
    return latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.raw_runtime", description=__doc__.split("\n")[0])
    parser.add_argument("--repository", type=Path, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of the session")
    parser.add_argument("--provider", choices=sorted(PROVIDERS), default="cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[1])
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per batch size and repeat")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args(argv)

    workload = load_workload(args.repository, args.model, args.max_tokens)
    session = open_session(locate(args.repository, args.model).onnx_path, args.threads, args.provider)
    for repeat in range(args.repeats):
        for batch in args.batches:
            step = workload.raw_step(session, batch)
            waited, started = run_queue_wait_s(), time.perf_counter()
            latencies = time_calls(step, args.seconds)
            wait_fraction = (run_queue_wait_s() - waited) / (time.perf_counter() - started)
            p50, p95, p99 = (float(v) for v in np.percentile(latencies, [50, 95, 99]))
            record = {
                "batch": batch,
                "repeat": repeat,
                "calls": len(latencies),
                "samples_per_s": len(latencies) * batch / sum(latencies),
                "p50_s": p50,
                "p95_s": p95,
                "p99_s": p99,
                "wait_fraction": wait_fraction,
                "provider": session.get_providers()[0],
            }
            sys.stdout.buffer.write(orjson.dumps(record) + b"\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
