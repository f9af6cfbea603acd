"""Where the service's time goes under load: `python -m loadtests.profile --model digits-cnn`.

Starts the service on one model (pinned like the benchmark), drives it with the closed-loop client,
and samples it with py-spy (`pip install py-spy`) in `--gil` mode, so only the thread holding the GIL
counts: on a server whose Python work is serialised by the GIL, that is where request-handling time
goes. Prints the share of samples per package (by the innermost frame) and the heaviest functions,
and keeps py-spy's collapsed stacks (`flamegraph.pl` or speedscope.app can draw them).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from loadtests.httpload import build_request, run_closed_loop
from loadtests.servers import cpu_set, free_port, pinned, service_command, start_server, write_variant
from loadtests.workloads import load_workload

_FRAME_RE = re.compile(r"^(?P<function>.*) \((?P<file>[^:]*)(?::\d+)?\)$")


def find_py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    return found


def package_of(frame: str) -> str:
    """`Server.run (uvicorn/server.py:86)` -> `uvicorn`; frames without a file keep their text."""
    match = _FRAME_RE.match(frame)
    if match is None:
        return frame or "(native)"
    path = match.group("file")
    return path.split("/", 1)[0] if "/" in path else path


def summarize(collapsed: Path, top: int) -> str:
    """Per-package self share and the heaviest functions, inclusive and self, as plain text."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        total += count
        self_time[frames[-1]] += count
        packages[package_of(frames[-1])] += count
        for frame in set(frames):
            inclusive[frame] += count
    if total == 0:
        return "no samples"

    def block(title: str, counter: Counter[str]) -> list[str]:
        return [title, *(f"  {100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(top))]

    lines = [f"{total} samples", *block("self time by package:", packages), *block("self time:", self_time)]
    return "\n".join([*lines, *block("inclusive time:", inclusive)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.profile",
        description=__doc__.split("\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--repository", type=Path, default=Path("models"))
    parser.add_argument("--model", default="digits-cnn")
    parser.add_argument("--batching", choices=["on", "off"], default="on")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0, help="sampling time")
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--client-cpus", default="1")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--top", type=int, default=25, help="functions listed per table")
    parser.add_argument("--out", type=Path, default=None, help="collapsed stacks file (default: a temp file)")
    args = parser.parse_args(argv)

    py_spy = find_py_spy()
    workload = load_workload(args.repository, args.model, args.max_tokens)
    out = args.out or Path(tempfile.mkdtemp(prefix="nnserve-profile-")) / f"{args.model}.collapsed"
    if args.client_cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpu_set(args.client_cpus))
    with tempfile.TemporaryDirectory(prefix="nnserve-profile-") as tmp:
        batching = args.batching == "on"
        variant = write_variant(
            args.repository,
            args.model,
            Path(tmp) / "repo",
            batching=batching,
            threads=args.threads,
            provider="cpu",
        )
        port = free_port()
        command = pinned(service_command(variant, port, [sys.executable, "-m", "service", "serve"]), args.server_cpus)
        server = start_server("service", command, port, Path(tmp))
        try:
            requests = [build_request("127.0.0.1", port, workload.path, b) for b in workload.bodies()]
            run_closed_loop("127.0.0.1", port, requests, args.concurrency, 0.5, 1.0)  # warm up
            sampler = subprocess.Popen(
                [py_spy, "record", "--pid", str(server.process.pid), "--duration", str(int(args.seconds)),
                 "--rate", str(args.rate), "--gil", "--format", "raw", "--output", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            time.sleep(0.5)  # py-spy attaches before the load starts; not a readiness wait
            load = run_closed_loop("127.0.0.1", port, requests, args.concurrency, 0.0, args.seconds)
            _, error = sampler.communicate(timeout=args.seconds + 60)
        finally:
            server.stop()
    if sampler.returncode != 0 or not out.exists():
        raise SystemExit(f"py-spy failed: {error.decode(errors='replace')[-1000:]}")
    print(f"{args.model}, batching {args.batching}, {args.concurrency} clients: {load.throughput:.0f}/s sampled")
    print(summarize(out, args.top))
    print(f"\ncollapsed stacks: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
