"""Dynamic batching on and off, beside raw ONNX Runtime: `python -m loadtests.bench_batching`.

For digits-cnn and text-transformer it serves a copy of the bundled model three ways: batching off
(`max_batch_size: 0`), on with `max_queue_delay_ms: 0`, and on as shipped. Closed-loop clients send
`:predict` requests at each concurrency; the executed batch sizes come from the server's own statistics
and the server's CPU time per request from the OS. In the same run, `session.run` is timed in-process
with the server's thread rule (one intra-op thread) at batch 1 and at the mean batch size the batcher
formed. The arms take turns in every repeat, so background load on a shared machine spreads over all of
them; each cell reports its repeat with the highest throughput.

The table replaces the section between the markers in docs/batching.md (`--no-write` only prints it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import psutil
from sklearn.datasets import load_digits
from tokenizers import Tokenizer

from loadtests.httpload import build_request, run_closed_loop
from loadtests.inputs import sms_texts
from service.schema.config import ModelConfig, load_config, write_config

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "batching.md"
BEGIN, END = "<!-- bench_batching:begin -->", "<!-- bench_batching:end -->"
ARMS: dict[str, dict[str, Any]] = {
    "off": {"max_batch_size": 0},
    "on, delay 0": {"max_queue_delay_ms": 0.0},
    "on, as shipped": {},
}
"""Changes to the model's `batching:` section per arm; "as shipped" keeps the bundled config."""
FORMED_ARM = "on, delay 0"
RawStep = tuple[Callable[[], object], int]
"""One call of in-process work and the samples it runs."""


# Workloads ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    model: str
    instances: list[Any]
    """One `:predict` instance per request."""
    raw: Callable[[ort.InferenceSession, int], RawStep]

    def bodies(self) -> list[bytes]:
        return [json.dumps({"instances": [i], "parameters": {"top_k": 1}}).encode() for i in self.instances]


def digits_workload(repository: Path) -> Workload:
    """64 scikit-learn digits, 8x8 values 0..16, which is the model's own input (no picture decoding)."""
    images = load_digits().images[-64:].astype(np.float32)  # (64, 8, 8)

    def raw(session: ort.InferenceSession, batch: int) -> RawStep:
        feeds = {"pixels": np.resize(images, (batch, 1, 8, 8))}
        return (lambda: session.run(None, feeds)), batch

    return Workload("digits-cnn", [image.tolist() for image in images], raw)


def text_workload(repository: Path) -> Workload:
    """SMS-like messages; raw batches hold texts of neighbouring lengths, as the batcher's bands do."""
    texts = list(sms_texts())
    tokenizer = Tokenizer.from_file(str(repository / "text-transformer" / "1" / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(128)
    encoded = sorted((e.ids for e in tokenizer.encode_batch(texts)), key=len)

    def raw(session: ort.InferenceSession, batch: int) -> RawStep:
        rows = sorted((encoded * (batch // len(encoded) + 1))[: max(batch, len(encoded))], key=len)
        feeds = []
        for start in range(0, len(rows) - batch + 1, batch):
            chunk = rows[start : start + batch]
            width = max(len(r) for r in chunk)
            ids = np.zeros((batch, width), np.int64)  # (B, T), padded with pad_token_id 0
            mask = np.zeros((batch, width), np.int64)
            for i, row in enumerate(chunk):
                ids[i, : len(row)] = row
                mask[i, : len(row)] = 1
            feeds.append({"input_ids": ids, "attention_mask": mask})
        return (lambda: [session.run(None, feed) for feed in feeds]), len(feeds) * batch

    return Workload("text-transformer", texts, raw)


WORKLOADS = {"digits-cnn": digits_workload, "text-transformer": text_workload}


# Results --------------------------------------------------------------------------------------------


@dataclass
class Cell:
    """One arm at one concurrency: the repeat with the highest throughput."""

    throughput: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    cpu_us: float = 0.0
    """Server CPU time (all its threads) per answered request."""
    mean_batch: float = 0.0
    errors: int = 0

    def offer(self, throughput: float, latencies: Sequence[float], cpu_us: float, mean_batch: float) -> None:
        if throughput > self.throughput and latencies:
            self.throughput, self.cpu_us, self.mean_batch = throughput, cpu_us, mean_batch
            self.p50_ms = float(np.percentile(latencies, 50)) * 1000
            self.p99_ms = float(np.percentile(latencies, 99)) * 1000


@dataclass
class ModelResult:
    model: str
    cells: dict[tuple[str, int], Cell] = field(default_factory=dict)
    raw: dict[int, float] = field(default_factory=dict)
    """Samples per second of `session.run` in-process, by batch size."""


# Servers --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_arm(repository: Path, model: str, target: Path, changes: dict[str, Any]) -> Path:
    """A repository holding only `model`, its `batching:` section changed."""
    shutil.copytree(repository / model, target / model)
    config = load_config(repository / model).model_dump()
    config["batching"] |= changes
    write_config(target / model, ModelConfig.model_validate(config))
    return target


@contextmanager
def serving(repository: Path, log: Path) -> Iterator[tuple[int, psutil.Process]]:
    """The service on a free port (access log off: the numbers are the serving path's, not the log's)."""
    port = free_port()
    command = [sys.executable, "-m", "service", "serve", "--repository", str(repository), "--port", str(port)]
    env = {**os.environ, "NNSERVE_LOG_LEVEL": "warning", "NNSERVE_UI": "false", "NNSERVE_GRPC_PORT": "0"}
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while not _ready(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not become ready:\n{log.read_text()}")
            time.sleep(0.05)  # polling interval
        yield port, psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=15)


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def counts(port: int, model: str) -> tuple[int, int]:
    """(inference_count, execution_count) from the server's statistics."""
    entry = httpx.get(f"http://127.0.0.1:{port}/v2/models/{model}/stats", timeout=10).json()["model_stats"][0]
    return entry["inference_count"], entry["execution_count"]


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


# The run --------------------------------------------------------------------------------------------


def measure_served(workload: Workload, args: argparse.Namespace, workdir: Path, result: ModelResult) -> None:
    path = f"/v1/models/{workload.model}:predict"
    for repeat in range(args.repeats):
        for number, (arm, changes) in enumerate(ARMS.items()):
            folder = workdir / f"{workload.model}-{repeat}-{number}"
            target = write_arm(args.repository, workload.model, folder, changes)
            with serving(target, target / "server.log") as (port, process):
                requests = [build_request("127.0.0.1", port, path, body) for body in workload.bodies()]
                for concurrency in args.concurrency:
                    before, cpu_before = counts(port, workload.model), cpu_seconds(process)
                    load = run_closed_loop("127.0.0.1", port, requests, concurrency, args.warmup, args.duration)
                    cpu = cpu_seconds(process) - cpu_before
                    after = counts(port, workload.model)
                    answered = after[0] - before[0]  # one sample per request
                    mean_batch = answered / max(1, after[1] - before[1])
                    cell = result.cells.setdefault((arm, concurrency), Cell())
                    cell.errors += load.errors
                    cell.offer(load.throughput, load.latencies_s, cpu / max(1, answered) * 1e6, mean_batch)
                    print(
                        f"  {workload.model:<17} {arm:<15} c={concurrency:<3} {load.throughput:7.0f} req/s  "
                        f"server CPU {cpu / max(1, answered) * 1e6:5.0f} us/req  batch {mean_batch:5.1f}  "
                        f"errors {load.errors}",
                        flush=True,
                    )


def measure_raw(workload: Workload, args: argparse.Namespace, result: ModelResult) -> None:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    path = args.repository / workload.model / "1" / "model.onnx"
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    formed = max(cell.mean_batch for (arm, _), cell in result.cells.items() if arm == FORMED_ARM)
    for batch in sorted({1, max(1, round(formed))}):
        step, samples = workload.raw(session, batch)
        step()  # warm-up
        calls, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < args.raw_seconds:
            step()
            calls += 1
        result.raw[batch] = calls * samples / elapsed


def table(results: Sequence[ModelResult]) -> str:
    lines = [
        "| model | arm | concurrency | requests/s | p50 ms | p99 ms | server CPU µs/request | mean batch | vs off |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        for (arm, concurrency), cell in result.cells.items():
            off = result.cells[("off", concurrency)].throughput
            lines.append(
                f"| {result.model} | {arm} | {concurrency} | {cell.throughput:.0f} | {cell.p50_ms:.2f} | "
                f"{cell.p99_ms:.2f} | {cell.cpu_us:.0f} | {cell.mean_batch:.1f} | {cell.throughput / off:.2f}x |"
            )
        for batch, rate in sorted(result.raw.items()):
            lines.append(
                f"| {result.model} | raw `session.run` in-process, batch {batch} | | {rate:.0f} samples/s | | | | | |"
            )
    return "\n".join(lines)


def write_docs(text: str) -> None:
    docs = DOCS.read_text(encoding="utf-8")
    start, end = docs.index(BEGIN) + len(BEGIN), docs.index(END)
    DOCS.write_text(f"{docs[:start]}\n{text}\n{docs[end:]}", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repository", type=Path, default=ROOT / "models", help="default: the bundled models")
    parser.add_argument("--models", nargs="+", choices=sorted(WORKLOADS), default=sorted(WORKLOADS))
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64], help="default: 1 8 64")
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds per cell (default 3)")
    parser.add_argument("--warmup", type=float, default=0.5, help="warm-up seconds per cell (default 0.5)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over all arms (default 3)")
    parser.add_argument("--raw-seconds", type=float, default=1.0, help="seconds per raw batch size (default 1)")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave docs/batching.md alone")
    args = parser.parse_args(argv)
    started_load = os.getloadavg()[0]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-batching-") as tmp:
        for model in args.models:
            workload = WORKLOADS[model](args.repository)
            result = ModelResult(model)
            measure_served(workload, args, Path(tmp), result)
            measure_raw(workload, args, result)
            results.append(result)
    text = (
        f"`python -m loadtests.bench_batching` on {os.cpu_count()} shared CPU cores (load average "
        f"{started_load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; client and server on the "
        f"same cores), onnxruntime {ort.__version__}, one intra-op thread, {args.duration:g} s per cell, "
        f"best of {args.repeats}:\n\n{table(results)}"
    )
    print(text)
    if not args.no_write:
        write_docs(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
