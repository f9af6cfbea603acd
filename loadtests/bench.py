"""One-command benchmark: `python -m loadtests.bench` (or `make bench`) rewrites docs/benchmarks.md.

For each model it measures, on the same cores and thread count: raw ONNX Runtime in-process at each
batch size (the limit), a bare FastAPI endpoint calling `session.run` inline (the floor), and the
service with dynamic batching off and on, each at every concurrency, repeated, reporting medians. The
server side (raw child, floor, service) is pinned to `--server-cpus` and this process, the load
generator, to `--client-cpus`; both sides' CPU use is recorded so a client-bound point shows. The
arms take turns inside every repeat, so background load on a shared machine spreads over all of them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import orjson
import psutil

from loadtests import machine, plots, report
from loadtests.httpload import build_request, run_closed_loop
from loadtests.results import ARMS, BenchRun, ModelResult, Sample, load_run, reduce_raw, reduce_served
from loadtests.servers import (
    Server,
    cpu_set,
    floor_command,
    free_port,
    pinned,
    process_usage,
    service_command,
    start_server,
    write_variant,
)
from loadtests.workloads import PROVIDERS, load_workload

DEFAULT_MODELS = ["digits-cnn", "text-transformer", "tiny-gpt"]
QUICK = {
    "concurrency": [1, 16],
    "repeats": 1,
    "duration": 1.0,
    "warmup": 0.5,
    "raw_seconds": 0.5,
    "raw_batches": [1, 16, 64],
    "max_tokens": 8,
}
"""Defaults --quick changes (explicit flags still win): a sanity run of a minute or two, not numbers to
publish. Its report goes to a temporary folder unless --out is given."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench",
        description="Benchmark nnserve against raw ONNX Runtime and a bare FastAPI endpoint; write a report.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--repository", type=Path, default=Path("models"), help="model repository to read")
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, help="models to measure")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS), help="served arms to run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64], help="closed-loop clients")
    parser.add_argument("--repeats", type=int, default=5, help="runs per point; tables show medians")
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each run")
    parser.add_argument("--raw-seconds", type=float, default=2.0, help="timed seconds per raw batch size and repeat")
    parser.add_argument(
        "--raw-batches", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64], help="raw batch sizes tried"
    )
    parser.add_argument("--max-tokens", type=int, default=32, help="tokens per generation request")
    parser.add_argument("--server-cpus", default="0", help="taskset list for servers and raw runs; '' = unpinned")
    parser.add_argument("--client-cpus", default="1", help="taskset list for the load generator; '' = unpinned")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: one per server CPU)")
    parser.add_argument("--provider", choices=sorted(PROVIDERS), default="cpu", help="ONNX Runtime provider")
    parser.add_argument(
        "--serve-command", default=f"{sys.executable} -m service serve", help="how to start the service"
    )
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"), help="markdown report to write")
    parser.add_argument("--img-dir", type=Path, default=None, help="plot folder; None = img/ beside --out")
    parser.add_argument("--json", type=Path, default=None, help="also write the run (results, machine) as JSON")
    parser.add_argument(
        "--render-only",
        type=Path,
        default=None,
        metavar="JSON",
        help="measure nothing: redo report and plots from --json",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fast sanity run (two concurrencies, one repeat, 1 s points); report in a temp folder",
    )
    return parser


def measure_raw(args: argparse.Namespace, model: str, threads: int) -> list[dict[str, float]]:
    command = [
        sys.executable, "-m", "loadtests.raw_runtime", "--repository", str(args.repository), "--model", model,
        "--threads", str(threads), "--provider", args.provider, "--seconds", str(args.raw_seconds),
        "--repeats", str(args.repeats), "--max-tokens", str(args.max_tokens),
        "--batches", *map(str, args.raw_batches),
    ]  # fmt: skip
    completed = subprocess.run(pinned(command, args.server_cpus), capture_output=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"raw run of {model} failed:\n{completed.stderr.decode(errors='replace')[-2000:]}")
    return [orjson.loads(line) for line in completed.stdout.splitlines() if line.strip()]


def start_arms(args: argparse.Namespace, model: str, threads: int, work: Path, stack: ExitStack) -> dict[str, Server]:
    """Start every requested served arm; an arm that fails to start is reported and left out."""
    servers: dict[str, Server] = {}
    for arm in args.arms:
        port = free_port()
        if arm == "floor":
            command = floor_command(args.repository, model, port, threads, args.provider, args.max_tokens)
        else:
            variant = write_variant(
                args.repository,
                model,
                work / arm,
                batching=arm != "off",
                threads=threads,
                provider=args.provider,
            )
            command = service_command(variant, port, shlex.split(args.serve_command))
        env = {"NNSERVE_ACCESS_LOG": str(arm == "logged").lower()}
        try:
            servers[arm] = start_server(f"{model}-{arm}", pinned(command, args.server_cpus), port, work, env)
        except RuntimeError as exc:
            print(f"  {arm}: not measured: {exc}", file=sys.stderr)
            continue
        stack.callback(servers[arm].stop)
    return servers


def measure_served(
    args: argparse.Namespace, bodies: list[bytes], path: str, servers: dict[str, Server]
) -> dict[tuple[str, int], list[Sample]]:
    """Every arm at every concurrency, `repeats` times, arms interleaved within each repeat."""
    client = psutil.Process()
    requests = {arm: [build_request("127.0.0.1", s.port, path, b) for b in bodies] for arm, s in servers.items()}
    samples: dict[tuple[str, int], list[Sample]] = {}
    for repeat in range(args.repeats):
        for concurrency in args.concurrency:
            for arm, server in servers.items():
                before = {a: s.usage() for a, s in servers.items()}
                client_before = process_usage(client, children=False)  # the servers are its children
                started = time.perf_counter()
                load = run_closed_loop("127.0.0.1", server.port, requests[arm], concurrency, args.warmup, args.duration)
                elapsed = time.perf_counter() - started
                used = {a: s.usage() - before[a] for a, s in servers.items()}
                client_used = process_usage(client, children=False) - client_before
                sample = Sample(
                    load=load,
                    server_cpu=used[arm].cpu_s / elapsed,
                    server_wait=used[arm].wait_s / elapsed,
                    client_cpu=client_used.cpu_s / elapsed,
                    client_wait=client_used.wait_s / elapsed,
                    bystander_cpu=sum(u.cpu_s for a, u in used.items() if a != arm) / elapsed,
                )
                samples.setdefault((arm, concurrency), []).append(sample)
                print(
                    f"  repeat {repeat + 1}/{args.repeats} {arm:>5} c={concurrency:<3} "
                    f"{load.throughput:9.1f}/s errors={load.errors} server cpu={sample.server_cpu:.2f} "
                    f"waiting={sample.server_wait:.2f} client cpu={sample.client_cpu:.2f}",
                    flush=True,
                )
    return samples


def measure_model(args: argparse.Namespace, model: str, threads: int) -> ModelResult:
    try:
        workload = load_workload(args.repository, model, args.max_tokens)
    except (FileNotFoundError, ValueError) as exc:
        return ModelResult(model, "request", notes=[f"Not measured: {exc}."])
    result = ModelResult(model, workload.unit)
    print(f"{model}: raw ONNX Runtime", flush=True)
    try:
        result.raw = reduce_raw(measure_raw(args, model, threads))
    except RuntimeError as exc:
        result.notes.append(f"Raw ONNX Runtime not measured: {exc}")
    with tempfile.TemporaryDirectory(prefix=f"bench-{model}-") as tmp, ExitStack() as stack:
        servers = start_arms(args, model, threads, Path(tmp), stack)
        result.notes += [f"{ARMS[arm]}: not measured (did not start)." for arm in args.arms if arm not in servers]
        samples = measure_served(args, workload.bodies(), workload.path, servers)
    result.served = [reduce_served(arm, c, runs) for (arm, c), runs in samples.items()]
    return result


def measured_flags(argv: list[str]) -> list[str]:
    """The command line minus where results are written: what decides the numbers."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--json", "--out", "--img-dir"):
            skip = True
        elif not arg.startswith(("--json=", "--out=", "--img-dir=")):
            kept.append(arg)
    return kept


def reproduce_text() -> str:
    return "\n".join(
        [
            "make install   # once: the venv with the service, training and dev extras",
            "make bench     # = python -m loadtests.bench: every model, about 15-20 minutes on 2 cores",
            "# this report's exact settings:",
            f"python -m loadtests.bench {shlex.join(measured_flags(sys.argv[1:]))}".rstrip(),
            "python -m loadtests.bench --quick   # a one-minute sanity run, report in a temp folder",
            "python -m loadtests.bench --help    # pinning, concurrency, repeats, provider",
        ]
    )


def pin_client(cpus: str) -> None:
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpu_set(cpus))


def write_outputs(run: BenchRun, out: Path, img_dir: Path) -> None:
    """Plots, the markdown report and the goals on stdout, from measured (or reloaded) results."""
    images = {}
    for result in run.results:
        if result.served:
            image = plots.plot_model(result, img_dir / f"bench-{result.model}.png")
            images[result.model] = os.path.relpath(image, out.parent)
    report.write(out, report.render(run, images))
    print(f"\nwrote {out} and plots in {img_dir}")
    for goal in report.evaluate_goals(run.results):
        print(f"{goal.verdict:>14}  {goal.name}: {goal.measured} (target {goal.target})")


def measure(args: argparse.Namespace) -> BenchRun:
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if available < 2 and (args.server_cpus or args.client_cpus):
        print("fewer than 2 CPUs: running unpinned", file=sys.stderr)
        args.server_cpus = args.client_cpus = ""
    threads = args.threads or (len(cpu_set(args.server_cpus)) if args.server_cpus else 1)
    machine_info = machine.describe(args.provider)
    pin_client(args.client_cpus)
    results = [measure_model(args, model, threads) for model in args.models]
    load1, load5, _ = os.getloadavg()
    setup = {
        "server CPUs (taskset)": args.server_cpus or "unpinned",
        "client CPUs (taskset)": args.client_cpus or "unpinned",
        "intra-op threads (raw, floor and service)": str(threads),
        "load average (1 min, 5 min) at end": f"{load1:.2f}, {load5:.2f}",
        "per point": f"{args.repeats} repeats x {args.duration:g} s measured after {args.warmup:g} s warm-up",
        "generation requests": f"{args.max_tokens} tokens, greedy (temperature 0)",
    }
    return BenchRun(machine_info, setup, reproduce_text(), results)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    if parser.parse_args(argv).quick:  # --quick changes defaults; flags given explicitly still win
        parser.set_defaults(**QUICK, out=Path(tempfile.mkdtemp(prefix="nnserve-bench-")) / "benchmarks.md")
    args = parser.parse_args(argv)
    if args.render_only:
        run = load_run(args.render_only)
    else:
        run = measure(args)
        if args.json:
            args.json.write_bytes(orjson.dumps(run, option=orjson.OPT_INDENT_2))
    write_outputs(run, args.out, args.img_dir or args.out.parent / "img")
    return 0


if __name__ == "__main__":
    sys.exit(main())
