"""Soak: minutes of mixed load on a real server, with hot reloads and clients that hang up, then a verdict.

    python -m loadtests.soak                 # 10 minutes
    python -m loadtests.soak --minutes 1 --json soak.json

Starts its own server the way a deployment behind a proxy does (`uvicorn --factory service.app:create_app
--root-path /nnserve`, API keys set; the clients send what a proxy that strips `/nnserve` forwards, and
uvicorn puts the prefix back in the request's path) on a copy of the bundled digits-cnn and tiny-gpt, then runs
`--clients` concurrent clients for `--minutes`, each request chosen at random from: v2 `infer`,
`:predict` with a picture, `generate_stream` and `/v1/completions` (streamed or not). A share of them
(`--disconnect-rate`) hangs up on purpose: mid-request (after a few milliseconds) or mid-stream (after
the first event). Every `--reload-every-s` one of the two models is reloaded (`POST .../load` with the
key) while the load runs.

Each client has its own connection (an `httpx.AsyncClient`), the reloader another, and every request
that hangs up on purpose a throwaway one: httpx leaks a pool connection now and then when a request is
cancelled as its answer completes (the connection stays marked active for good), which in one shared pool
starved every client after some minutes. A client whose request hung or failed to connect starts afresh.

Reported: requests by kind and status, unexpected 5xx (any 5xx answer, any error event inside a
stream, any failed reload), hung requests (no complete answer within `--hung-after-s`), connection
errors (of requests or reloads), the server's RSS after warm-up and at the end (medians of the samples
in the first and last `RSS_WINDOW_S` after warm-up) and its growth, and the server's exit code after
SIGTERM. Exit status 1 when there was any unexpected 5xx, hung request or connection error, or RSS grew
by `--max-rss-growth-pct` or more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from loadtests.inputs import b64, digit_images, digit_pngs, prompts
from loadtests.servers import free_port

BUNDLED = Path(__file__).resolve().parents[1] / "models"
MODELS = ("digits-cnn", "tiny-gpt")
ROOT_PATH = "/nnserve"
API_KEY = "soak-admin-key"
RSS_WINDOW_S = 5.0
"""RSS is the median of the samples (one a second) in a window this long: one sample can catch a reload
with two versions loaded at once."""
START_TIMEOUT_S = 120.0
KINDS = ("infer", "predict", "generate_stream", "completions")
RELOAD_TIMEOUT_S = 120.0


@dataclass
class Tally:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    stream_errors: int = 0
    hung: int = 0
    transport_errors: int = 0
    disconnects: Counter[str] = field(default_factory=Counter)
    reloads: Counter[int] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    """The first few unexpected answers, for the report."""
    slowest_s: float = 0.0

    def unexpected(self, text: str) -> None:
        if len(self.examples) < 10:
            self.examples.append(text[:300])

    @property
    def unexpected_5xx(self) -> int:
        answers = sum(n for (_, status), n in self.statuses.items() if status >= 500)
        reloads = sum(n for status, n in self.reloads.items() if status != 200)
        return answers + self.stream_errors + reloads


@dataclass
class Soak:
    """One client: requests one after another on its own connection."""

    connect: Callable[[], httpx.AsyncClient]
    tally: Tally
    hung_after_s: float
    disconnect_rate: float
    rng: random.Random
    pictures: tuple[str, ...] = ()
    digits: list[list[float]] = field(default_factory=list)
    texts: tuple[str, ...] = ()
    client: httpx.AsyncClient | None = None
    """The connection kept between requests; a new one after a request that hung or failed."""

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    @asynccontextmanager
    async def _connection(self, throwaway: bool) -> AsyncIterator[httpx.AsyncClient]:
        """The kept client, or a throwaway one for a request that hangs up on purpose (closing it closes
        whatever connection the cancelled request left behind)."""
        if throwaway:
            async with self.connect() as client:
                yield client
            return
        if self.client is None:
            self.client = self.connect()
        yield self.client

    async def one(self) -> None:
        """One request of a random kind; hangs up on purpose with probability `disconnect_rate`."""
        kind = self.rng.choice(KINDS)
        hang_up = self.rng.random() < self.disconnect_rate
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.hung_after_s), self._connection(throwaway=hang_up) as client:
                if hang_up and kind in ("infer", "predict"):
                    await self._hang_up_mid_request(client, kind)
                else:
                    await self._request(client, kind, hang_up)
        except TimeoutError:
            self.tally.hung += 1
            self.tally.unexpected(f"{kind}: no complete answer within {self.hung_after_s} s")
            await self.close()
        except httpx.TransportError as exc:
            self.tally.transport_errors += 1
            self.tally.unexpected(f"{kind}: {type(exc).__name__}: {exc}")
            await self.close()
        self.tally.slowest_s = max(self.tally.slowest_s, time.monotonic() - started)

    async def _hang_up_mid_request(self, client: httpx.AsyncClient, kind: str) -> None:
        task = asyncio.ensure_future(self._request(client, kind, False))
        await asyncio.sleep(self.rng.uniform(0.001, 0.02))
        if task.done():
            await task  # answered before the hang-up: counted as usual
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self.tally.disconnects["mid-request"] += 1

    async def _request(self, client: httpx.AsyncClient, kind: str, hang_up_mid_stream: bool) -> None:
        if kind == "infer":
            digit = self.rng.choice(self.digits)
            body: dict[str, Any] = {
                "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 1, 8, 8], "data": digit}]
            }
            await self._answer(client, kind, "/v2/models/digits-cnn/infer", body)
        elif kind == "predict":
            body = {"instances": [{"b64": self.rng.choice(self.pictures)}]}
            await self._answer(client, kind, "/v1/models/digits-cnn:predict", body)
        elif kind == "generate_stream":
            body = {"text_input": self.rng.choice(self.texts), "max_tokens": 24, "temperature": 0.8,
                    "seed": self.rng.randrange(2**31)}
            await self._stream(client, kind, "/v2/models/tiny-gpt/generate_stream", body, hang_up_mid_stream)
        else:
            streamed = self.rng.random() < 0.5 or hang_up_mid_stream
            body = {"model": "tiny-gpt", "prompt": self.rng.choice(self.texts), "max_tokens": 16, "stream": streamed}
            url = "/v1/completions"
            if streamed:
                await self._stream(client, kind, url, body, hang_up_mid_stream)
            else:
                await self._answer(client, kind, url, body)

    async def _answer(self, client: httpx.AsyncClient, kind: str, url: str, body: dict[str, Any]) -> None:
        response = await client.post(url, json=body)
        self.tally.statuses[(kind, response.status_code)] += 1
        if response.status_code != 200:
            self.tally.unexpected(f"{kind}: {response.status_code} {response.text}")

    async def _stream(
        self, client: httpx.AsyncClient, kind: str, url: str, body: dict[str, Any], hang_up: bool
    ) -> None:
        async with client.stream("POST", url, json=body) as response:
            self.tally.statuses[(kind, response.status_code)] += 1
            if response.status_code != 200:
                self.tally.unexpected(f"{kind}: {response.status_code} {(await response.aread()).decode()}")
                return
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                if hang_up:
                    self.tally.disconnects["mid-stream"] += 1
                    return  # leaving the block closes the connection after the first event
                if line == "data: [DONE]":
                    continue
                event = json.loads(line[len("data: "):])
                if "error" in event:
                    self.tally.stream_errors += 1
                    self.tally.unexpected(f"{kind} stream: {line}")


async def _client_loop(soak: Soak, stop_at: float) -> None:
    try:
        while time.monotonic() < stop_at:
            await soak.one()
    finally:
        await soak.close()


async def _reloads(client: httpx.AsyncClient, tally: Tally, every_s: float, stop_at: float) -> None:
    """Reload each model in turn every `every_s`, with the key, while the load runs. A reload that gets no
    answer (connection error, or none within RELOAD_TIMEOUT_S) is a connection error in the report."""
    turn = 0
    while time.monotonic() + every_s < stop_at:
        await asyncio.sleep(every_s)
        name = MODELS[turn % len(MODELS)]
        turn += 1
        url = f"/v2/repository/models/{name}/load"
        try:
            response = await client.post(url, timeout=RELOAD_TIMEOUT_S)
        except httpx.TransportError as exc:
            tally.transport_errors += 1
            tally.unexpected(f"reload {name}: {type(exc).__name__}: {exc}")
            continue
        tally.reloads[response.status_code] += 1
        if response.status_code != 200:
            tally.unexpected(f"reload {name}: {response.status_code} {response.text}")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def _sample_rss(pid: int, samples: list[tuple[float, int]], stop_at: float, started: float) -> None:
    while time.monotonic() < stop_at:
        samples.append((time.monotonic() - started, rss_bytes(pid)))
        await asyncio.sleep(1.0)


def rss_growth(samples: list[tuple[float, int]], warmup_s: float) -> tuple[float, float, float]:
    """(RSS after warm-up, RSS at the end, growth %): medians of the first and last RSS_WINDOW_S of
    samples taken after the warm-up."""
    after = [(t, rss) for t, rss in samples if t >= warmup_s]
    if not after:
        raise ValueError("no RSS sample after the warm-up: run longer than the warm-up")
    first, last = after[0][0], after[-1][0]
    warm = statistics.median(rss for t, rss in after if t <= first + RSS_WINDOW_S)
    end = statistics.median(rss for t, rss in after if t >= last - RSS_WINDOW_S)
    return warm, end, (end - warm) / warm * 100


@dataclass
class Options:
    minutes: float
    clients: int
    reload_every_s: float
    disconnect_rate: float
    hung_after_s: float
    warmup_s: float
    max_rss_growth_pct: float
    seed: int


async def run_load(base_url: str, pid: int, options: Options) -> dict[str, Any]:
    """The load, the reloads and the RSS samples against a started server; the report (without exit code)."""
    tally = Tally()
    samples: list[tuple[float, int]] = []
    started = time.monotonic()
    stop_at = started + options.minutes * 60

    def connect() -> httpx.AsyncClient:
        """One client's own connection (requests one after another need no more)."""
        limits = httpx.Limits(max_connections=1)
        return httpx.AsyncClient(base_url=base_url, limits=limits, headers=headers, timeout=None)

    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with connect() as reloader:
        soaks = [
            Soak(
                connect,
                tally,
                options.hung_after_s,
                options.disconnect_rate,
                random.Random(options.seed + i),
                tuple(b64(png) for png in digit_pngs()),
                [image.reshape(-1).tolist() for image in digit_images()],
                prompts(),
            )
            for i in range(options.clients)
        ]
        tasks: list[Awaitable[None]] = [_client_loop(soak, stop_at) for soak in soaks]
        tasks.append(_reloads(reloader, tally, options.reload_every_s, stop_at))
        tasks.append(_sample_rss(pid, samples, stop_at, started))
        await asyncio.gather(*tasks)
    warm, end, growth = rss_growth(samples, options.warmup_s)
    statuses: dict[str, dict[str, int]] = {}
    for (kind, status), count in sorted(tally.statuses.items()):
        statuses.setdefault(kind, {})[str(status)] = count
    return {
        "seconds": round(time.monotonic() - started, 1),
        "clients": options.clients,
        "requests": sum(tally.statuses.values()),
        "statuses": statuses,
        "disconnects": dict(tally.disconnects),
        "reloads": {str(status): n for status, n in tally.reloads.items()},
        "unexpected_5xx": tally.unexpected_5xx,
        "stream_errors": tally.stream_errors,
        "hung": tally.hung,
        "transport_errors": tally.transport_errors,
        "slowest_s": round(tally.slowest_s, 3),
        "rss_mb": {
            "start": round(samples[0][1] / 2**20, 1),
            "after_warmup": round(warm / 2**20, 1),
            "end": round(end / 2**20, 1),
            "peak": round(max(rss for _, rss in samples) / 2**20, 1),
        },
        "rss_growth_pct": round(growth, 2),
        "examples": tally.examples,
    }


def _repository(base: Path) -> Path:
    root = base / "models"
    root.mkdir()
    for name in MODELS:
        shutil.copytree(BUNDLED / name, root / name)
    return root


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/v2/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # polling interval
    raise RuntimeError(f"the server was not ready after {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def soak(options: Options, work_dir: Path) -> dict[str, Any]:
    """Start the server under the root path with keys, soak it, stop it with SIGTERM; the report."""
    port = free_port()
    log = work_dir / "server.log"
    env = {
        **os.environ,
        "NNSERVE_REPOSITORY": str(_repository(work_dir)),
        "NNSERVE_API_KEYS": API_KEY,
        "NNSERVE_LOG_FORMAT": "json",
        "NNSERVE_LOG_LEVEL": "warning",
        "NNSERVE_GRPC_PORT": "0",  # HTTP only: gRPC's default port 8001 clashes with any other server here
    }
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--root-path", ROOT_PATH,
        "--timeout-graceful-shutdown", "30", "--no-access-log",
    ]
    base_url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_ready(base_url, process, log)
            report = asyncio.run(run_load(base_url, process.pid, options))
            process.send_signal(signal.SIGTERM)
            report["server_exit_code"] = process.wait(timeout=60)
            report["graceful_shutdown"] = "Application shutdown complete" in log.read_text(errors="replace")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    report["ok"] = verdict(report, options.max_rss_growth_pct)
    return report


def verdict(report: dict[str, Any], max_rss_growth_pct: float) -> bool:
    return bool(
        report["unexpected_5xx"] == 0
        and report["hung"] == 0
        and report["transport_errors"] == 0
        and report["rss_growth_pct"] < max_rss_growth_pct
    )


def summary(report: dict[str, Any]) -> str:
    rss = report["rss_mb"]
    lines = [
        f"soak: {report['seconds']} s, {report['clients']} clients, {report['requests']} answers",
        f"  statuses: {json.dumps(report['statuses'])}",
        f"  hang-ups on purpose: {json.dumps(report['disconnects'])}; reloads: {json.dumps(report['reloads'])}",
        f"  unexpected 5xx: {report['unexpected_5xx']} (stream error events {report['stream_errors']}); "
        f"hung: {report['hung']}; connection errors: {report['transport_errors']}; slowest {report['slowest_s']} s",
        f"  RSS: {rss['start']} MB at start, {rss['after_warmup']} MB after warm-up, {rss['end']} MB at the end "
        f"(peak {rss['peak']} MB): {report['rss_growth_pct']:+.2f}%",
        f"  after SIGTERM: exit code {report.get('server_exit_code')} (uvicorn re-raises the signal once it "
        f"has drained), graceful shutdown: {report.get('graceful_shutdown')}",
        f"  verdict: {'PASS' if report['ok'] else 'FAIL'}",
    ]
    lines += [f"  unexpected: {example}" for example in report["examples"]]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the load runs (default 10)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--reload-every-s", type=float, default=10.0, help="seconds between hot reloads (10)")
    parser.add_argument("--disconnect-rate", type=float, default=0.1, help="share of requests hung up on (0.1)")
    parser.add_argument("--hung-after-s", type=float, default=30.0, help="a request slower than this is hung (30)")
    parser.add_argument(
        "--warmup-s", type=float, default=None, help="RSS baseline taken after this (default: 10%% of the run, >= 5 s)"
    )
    parser.add_argument("--max-rss-growth-pct", type=float, default=10.0, help="fail at this RSS growth (10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = Options(
        minutes=args.minutes,
        clients=args.clients,
        reload_every_s=args.reload_every_s,
        disconnect_rate=args.disconnect_rate,
        hung_after_s=args.hung_after_s,
        warmup_s=args.warmup_s if args.warmup_s is not None else max(5.0, args.minutes * 6),
        max_rss_growth_pct=args.max_rss_growth_pct,
        seed=args.seed,
    )
    with tempfile.TemporaryDirectory(prefix="nnserve-soak-") as work:
        report = soak(options, Path(work))
    print(summary(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

