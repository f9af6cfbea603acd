"""gRPC vs HTTP benchmark: `python -m loadtests.bench_grpc` writes the "gRPC and HTTP" section of
docs/benchmarks.md.

One nnserve per model (dynamic batching on, pinned to `--server-cpus` as in loadtests.bench) serves
three arms in turn, interleaved within every repeat: gRPC `ModelInfer` with `raw_input_contents` (what
tritonclient.grpc sends), HTTP with binary tensor data (tritonclient.http's default) and HTTP with JSON
tensors. Each arm is a closed loop of N clients with prebuilt requests, so the clients cost as little as
possible: raw HTTP/1.1 over uvloop (loadtests.httpload), and grpcio's asyncio channel with the
request's serialized bytes (one channel, hence one HTTP/2 connection, per client). Reported: requests/s
and p50/p99 latency, medians over the repeats. The server's and the client's CPU use are recorded, so
a client-bound point shows as such.

Run it after `make bench`, which rewrites docs/benchmarks.md: the section between the markers below is
replaced (or appended), the rest of the file is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import orjson
import psutil
import uvloop

from loadtests import machine
from loadtests.bench import pin_client
from loadtests.httpload import LoadResult, build_request, run_closed_loop
from loadtests.servers import (
    Server,
    cpu_set,
    free_port,
    pinned,
    process_usage,
    service_command,
    start_server,
    write_variant,
)
from loadtests.workloads import NUMPY_TYPES, load_workload
from service.grpc.generated import grpc_service_pb2 as pb

ARMS = ("grpc", "http-binary", "http-json")
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
START = "<!-- bench_grpc:start -->"
END = "<!-- bench_grpc:end -->"
QUICK = {"concurrency": [1, 4], "repeats": 1, "duration": 0.5, "warmup": 0.2}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench_grpc",
        description="gRPC (raw contents) vs HTTP binary vs HTTP JSON on one nnserve per model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--repository", type=Path, default=Path("models"), help="model repository to read")
    parser.add_argument("--models", nargs="+", default=["digits-cnn", "text-transformer"], help="models to measure")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64], help="closed-loop clients")
    parser.add_argument("--repeats", type=int, default=5, help="runs per point; tables show medians")
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each run")
    parser.add_argument("--server-cpus", default="0", help="taskset list for the server; '' = unpinned")
    parser.add_argument("--client-cpus", default="1", help="taskset list for the load generator; '' = unpinned")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: one per server CPU)")
    parser.add_argument("--serve-command", default=f"{sys.executable} -m service serve", help="how to start nnserve")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"), help="report to update")
    parser.add_argument("--quick", action="store_true", help=f"a sanity run ({QUICK}), report to a temp file")
    return parser


@dataclass
class Point:
    arm: str
    concurrency: int
    throughputs: list[float] = field(default_factory=list)
    p50s_ms: list[float] = field(default_factory=list)
    p99s_ms: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""

    def add(self, load: LoadResult, server_cpu: float, client_cpu: float) -> None:
        self.throughputs.append(load.throughput)
        p50, p99 = np.percentile(np.asarray(load.latencies_s or [np.nan]) * 1000.0, [50, 99])
        self.p50s_ms.append(float(p50))
        self.p99s_ms.append(float(p99))
        self.server_cpu.append(server_cpu)
        self.client_cpu.append(client_cpu)
        self.errors += load.errors
        self.first_error = self.first_error or load.first_error


def samples_of(bodies: list[bytes]) -> list[dict[str, np.ndarray]]:
    """The workload's JSON request bodies as arrays, to encode the same inputs for every arm."""
    samples = []
    for body in bodies:
        request = orjson.loads(body)
        samples.append(
            {
                t["name"]: np.asarray(t["data"], dtype=NUMPY_TYPES[t["datatype"]]).reshape(t["shape"])
                for t in request["inputs"]
            }
        )
    return samples


def datatype(array: np.ndarray) -> str:
    return {np.dtype(v): k for k, v in NUMPY_TYPES.items()}[array.dtype]


def grpc_request(model: str, sample: dict[str, np.ndarray]) -> bytes:
    request = pb.ModelInferRequest(model_name=model)
    for name, array in sample.items():
        request.inputs.add(name=name, datatype=datatype(array), shape=array.shape)
        request.raw_input_contents.append(np.ascontiguousarray(array).tobytes())
    return request.SerializeToString()


def http_binary_request(port: int, path: str, sample: dict[str, np.ndarray]) -> bytes:
    """tritonclient.http's form: JSON header with binary_data_size, raw tensors after it, binary outputs."""
    blobs = [np.ascontiguousarray(a).tobytes() for a in sample.values()]
    head = orjson.dumps(
        {
            "inputs": [
                {"name": n, "datatype": datatype(a), "shape": list(a.shape), "parameters": {"binary_data_size": len(b)}}
                for (n, a), b in zip(sample.items(), blobs, strict=True)
            ],
            "parameters": {"binary_data_output": True},
        }
    )
    raw = build_request("127.0.0.1", port, path, b"".join([head, *blobs]), "application/octet-stream")
    return raw.replace(
        b"Content-Length:", f"Inference-Header-Content-Length: {len(head)}\r\nContent-Length:".encode(), 1
    )


async def grpc_closed_loop(
    port: int, requests: list[bytes], concurrency: int, warmup_s: float, duration_s: float
) -> LoadResult:
    """As loadtests.httpload.closed_loop, over gRPC: one channel per client, prebuilt request bytes."""
    options = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_receive_message_length", -1)]
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) for _ in range(concurrency)]
    result = LoadResult(concurrency=concurrency, seconds=duration_s)
    start = time.perf_counter()
    window_start, window_end = start + warmup_s, start + warmup_s + duration_s

    async def worker(index: int, channel: grpc.aio.Channel) -> None:
        call = channel.unary_unary(MODEL_INFER)
        turn = index
        while (sent := time.perf_counter()) < window_end:
            failure = ""
            try:
                await call(requests[turn % len(requests)], timeout=120)
            except grpc.aio.AioRpcError as exc:
                failure = f"{exc.code().name}: {exc.details()}"
            answered = time.perf_counter()
            turn += concurrency
            if window_start <= answered <= window_end:
                if failure:
                    result.errors += 1
                    result.first_error = result.first_error or failure
                    continue
                result.completed += 1
                if sent >= window_start:
                    result.latencies_s.append(answered - sent)

    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        await asyncio.gather(*(channel.channel_ready() for channel in channels))
        await asyncio.gather(*(worker(i, c) for i, c in enumerate(channels)))
    finally:
        await asyncio.gather(*(channel.close() for channel in channels))
        if gc_was_enabled:
            gc.enable()
    return result


def run_grpc_closed_loop(
    port: int, requests: list[bytes], concurrency: int, warmup_s: float, duration_s: float
) -> LoadResult:
    return uvloop.run(grpc_closed_loop(port, requests, concurrency, warmup_s, duration_s))


def measure_model(args: argparse.Namespace, model: str, threads: int, work: Path) -> dict[tuple[str, int], Point]:
    workload = load_workload(args.repository, model, max_tokens=1)
    samples = samples_of(workload.bodies())
    variant = write_variant(args.repository, model, work / model, batching=True, threads=threads, provider="cpu")
    port, grpc_port = free_port(), free_port()
    command = [*service_command(variant, port, args.serve_command.split()), "--grpc-port", str(grpc_port)]
    env = {"NNSERVE_ACCESS_LOG": "false"}
    with ExitStack() as stack:
        server: Server = start_server(f"{model}-grpc-bench", pinned(command, args.server_cpus), port, work, env)
        stack.callback(server.stop)
        runs: dict[str, Callable[[int], LoadResult]] = {}
        grpc_requests = [grpc_request(model, s) for s in samples]
        binary = [http_binary_request(port, workload.path, s) for s in samples]
        json_requests = [build_request("127.0.0.1", port, workload.path, b) for b in workload.bodies()]
        runs["grpc"] = lambda c: run_grpc_closed_loop(grpc_port, grpc_requests, c, args.warmup, args.duration)
        runs["http-binary"] = lambda c: run_closed_loop("127.0.0.1", port, binary, c, args.warmup, args.duration)
        runs["http-json"] = lambda c: run_closed_loop("127.0.0.1", port, json_requests, c, args.warmup, args.duration)
        points: dict[tuple[str, int], Point] = {}
        client = psutil.Process()
        for repeat in range(args.repeats):
            for concurrency in args.concurrency:
                for arm in ARMS:
                    before, client_before = server.usage(), process_usage(client, children=False)
                    started = time.perf_counter()
                    load = runs[arm](concurrency)
                    elapsed = time.perf_counter() - started
                    server_cpu = (server.usage() - before).cpu_s / elapsed
                    client_cpu = (process_usage(client, children=False) - client_before).cpu_s / elapsed
                    point = points.setdefault((arm, concurrency), Point(arm, concurrency))
                    point.add(load, server_cpu, client_cpu)
                    print(
                        f"  {model} repeat {repeat + 1}/{args.repeats} {arm:>11} c={concurrency:<3} "
                        f"{load.throughput:9.1f}/s errors={load.errors} server cpu={server_cpu:.2f} "
                        f"client cpu={client_cpu:.2f}",
                        flush=True,
                    )
    return points


def _median(values: list[float]) -> float:
    finite = [v for v in values if v == v]
    return statistics.median(finite) if finite else float("nan")


def render(results: dict[str, dict[tuple[str, int], Point]], setup: dict[str, str]) -> str:
    lines = [
        START,
        "## gRPC and HTTP",
        "",
        "Written by `python -m loadtests.bench_grpc` (see its docstring). One nnserve per model, dynamic batching "
        "on; the same inputs sent as gRPC `ModelInfer` with raw contents, HTTP with binary tensor data, and HTTP "
        "with JSON tensors. Medians over the repeats.",
        "",
        *(f"- {key}: {value}" for key, value in setup.items()),
        "",
    ]
    for model, points in results.items():
        lines += [
            f"### {model}",
            "",
            "| arm | clients | requests/s | p50 ms | p99 ms | server CPU | client CPU | errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for (arm, concurrency), point in sorted(points.items(), key=lambda item: (item[0][1], ARMS.index(item[0][0]))):
            lines.append(
                f"| {arm} | {concurrency} | {_median(point.throughputs):,.0f} | {_median(point.p50s_ms):.2f} | "
                f"{_median(point.p99s_ms):.2f} | {_median(point.server_cpu):.2f} | {_median(point.client_cpu):.2f} | "
                f"{point.errors} |"
            )
        lines.append("")
        for concurrency in sorted({c for _, c in points}):
            grpc_rate = _median(points[("grpc", concurrency)].throughputs)
            binary_rate = _median(points[("http-binary", concurrency)].throughputs)
            if binary_rate:
                lines.append(f"- {concurrency} clients: gRPC / HTTP binary = {grpc_rate / binary_rate:.2f}x requests/s")
        lines.append("")
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace the section between the markers, or append it; the rest of the report stays."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + section.rstrip("\n") + tail
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + section
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    if parser.parse_args(argv).quick:
        parser.set_defaults(**QUICK, out=Path(tempfile.mkdtemp(prefix="nnserve-bench-grpc-")) / "benchmarks.md")
    args = parser.parse_args(argv)
    if len(psutil.Process().cpu_affinity() or []) < 2 and (args.server_cpus or args.client_cpus):
        print("fewer than 2 CPUs: running unpinned", file=sys.stderr)
        args.server_cpus = args.client_cpus = ""
    threads = args.threads or (len(cpu_set(args.server_cpus)) if args.server_cpus else 1)
    pin_client(args.client_cpus)
    with tempfile.TemporaryDirectory(prefix="nnserve-bench-grpc-") as work:
        results = {model: measure_model(args, model, threads, Path(work)) for model in args.models}
    info = machine.describe("cpu")
    setup: dict[str, Any] = {
        "date": info["date"],
        "machine": f"{info['cpu']}, {info['logical cores']} logical cores",
        "server CPUs (taskset)": args.server_cpus or "unpinned",
        "client CPUs (taskset)": args.client_cpus or "unpinned",
        "intra-op threads": str(threads),
        "per point": f"{args.repeats} repeats x {args.duration:g} s measured after {args.warmup:g} s warm-up",
        "commit": machine.git_commit(),
    }
    write_section(args.out, render(results, setup))
    print(f"\nwrote the gRPC section of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
