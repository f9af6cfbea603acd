"""Image-generation benchmark: `python -m loadtests.bench_gan` writes its section of docs/benchmarks.md.

Images per second that nnserve serves from digits-gan (`:predict`, PNG-encoded answers, through the
batcher) at concurrency 1 and 16, with 1 and 16 images per request, beside raw ONNX Runtime running the
same generator in-process at the same batch sizes (no HTTP, no latents drawn, no PNG): everything the
service adds shows up as the difference. Each arm is repeated and the best run kept (a shared machine
disturbs some runs; the best is the least disturbed). `--short` is a seconds-long check that the script
works; its report goes to a temp file unless `--output` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from loadtests.httpload import build_request, run_closed_loop
from loadtests.raw_runtime import time_calls
from loadtests.servers import free_port, start_server
from service.schema.config import MODEL_FILE
from service.tasks.latents import draw_latents

MODEL = "digits-gan"
MARK_START = "<!-- bench_gan: start -->"
MARK_END = "<!-- bench_gan: end -->"
"""The section between these marks is this script's; the rest of the file is left as it is."""
CONCURRENCY = (1, 16)
IMAGES_PER_REQUEST = (1, 16)
RAW_BATCHES = (1, 16, 64)


@dataclass(frozen=True)
class Served:
    concurrency: int
    count: int
    images_per_s: float
    p50_ms: float


def raw_images_per_s(version_dir: Path, batch: int, seconds: float, threads: int) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(version_dir / MODEL_FILE), options, providers=["CPUExecutionProvider"])
    feeds = {"z": draw_latents(0, batch, 32), "label": np.arange(batch, dtype=np.int64) % 10}
    latencies = time_calls(lambda: session.run(None, feeds), seconds)
    return batch * len(latencies) / sum(latencies)


def served(port: int, concurrency: int, count: int, warmup_s: float, seconds: float) -> Served:
    path = f"/v1/models/{MODEL}:predict"
    bodies = [
        build_request(
            "127.0.0.1",
            port,
            path,
            json.dumps({"instances": [{"label": str(s % 10), "seed": s, "count": count}]}).encode(),
        )
        for s in range(64)
    ]
    result = run_closed_loop("127.0.0.1", port, bodies, concurrency, warmup_s, seconds)
    if result.errors:
        raise RuntimeError(f"{result.errors} failed requests at concurrency {concurrency}: {result.first_error}")
    p50 = float(np.median(result.latencies_s)) * 1000 if result.latencies_s else float("nan")
    return Served(concurrency, count, result.throughput * count, p50)


def render(rows: list[Served], raw: dict[int, float], setup: dict[str, str]) -> str:
    lines = [
        MARK_START,
        "## digits-gan (image generation)",
        "",
        "Written by `python -m loadtests.bench_gan`; rerun it instead of editing. Served: closed-loop clients "
        'POSTing `{"instances": [{"label", "seed", "count"}]}` to `:predict` (latents drawn from the '
        "seed, batcher, generator, one PNG per image, base64 in JSON). Raw: back-to-back `session.run` of the "
        "same graph in-process on ready latents.",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in setup.items()),
        "",
        "| raw ONNX Runtime batch | images/s |",
        "|---:|---:|",
        *(f"| {batch} | {rate:,.0f} |" for batch, rate in raw.items()),
        "",
        "| concurrency | images per request | served images/s | p50 ms per request | raw at the same batch "
        "| served / raw |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        same = raw.get(row.count, float("nan"))
        lines.append(
            f"| {row.concurrency} | {row.count} | {row.images_per_s:,.0f} | {row.p50_ms:.2f} | {same:,.0f} | "
            f"{row.images_per_s / same:.0%} |"
        )
    lines += [MARK_END, ""]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> Path:
    """Replace this script's section in `path` (between the marks), or append it."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if MARK_START in text and MARK_END in text:
        before, rest = text.split(MARK_START, 1)
        after = rest.split(MARK_END, 1)[1].lstrip("\n")
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench_gan", description=__doc__.split("\n")[0])
    parser.add_argument("--repository", type=Path, default=Path("models"))
    parser.add_argument("--output", type=Path, default=None, help="default: docs/benchmarks.md (--short: a temp file)")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per point")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads, raw and served")
    parser.add_argument("--short", action="store_true", help="a few seconds in all, to check the script runs")
    args = parser.parse_args(argv)
    seconds, warmup, repeats = (0.5, 0.2, 1) if args.short else (args.seconds, 1.0, args.repeats)
    output = args.output or (Path(tempfile.mkdtemp()) / "benchmarks.md" if args.short else Path("docs/benchmarks.md"))
    version_dir = args.repository / MODEL / "1"
    raw = {b: max(raw_images_per_s(version_dir, b, seconds, args.threads) for _ in range(repeats)) for b in RAW_BATCHES}

    work = Path(tempfile.mkdtemp(prefix="bench-gan-"))
    shutil.copytree(args.repository / MODEL, work / "repository" / MODEL)
    port = free_port()
    command = [sys.executable, "-m", "service", "serve", "--repository", str(work / "repository"), "--port", str(port)]
    env = {"NNSERVE_ACCESS_LOG": "false", "NNSERVE_INTRA_OP_THREADS": str(args.threads), "NNSERVE_LOG_LEVEL": "warning"}
    server = start_server("nnserve", command, port, work, env=env)
    try:
        rows = []
        for count in IMAGES_PER_REQUEST:
            for concurrency in CONCURRENCY:
                runs = [served(port, concurrency, count, warmup, seconds) for _ in range(repeats)]
                rows.append(max(runs, key=lambda r: r.images_per_s))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    setup = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "logical cores": str(os.cpu_count()),
        "load average (1 min) at end": f"{os.getloadavg()[0]:.2f}",
        "python / onnxruntime": f"{platform.python_version()} / {ort.__version__}",
        "intra-op threads (raw and served)": str(args.threads),
        "per point": f"best of {repeats} x {seconds:g} s after {warmup:g} s warm-up"
        + (" (--short)" if args.short else ""),
    }
    path = write_section(output, render(rows, raw, setup))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
