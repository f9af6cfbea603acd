"""Latency of one `:predict` at concurrency 1, next to raw ONNX Runtime on the same input, in one run.

    python -m loadtests.predict_latency --repository models --model digits-cnn -n 200

Starts `python -m service serve` on a free loopback port, sends the same request `-n` times over one
keep-alive connection (after a warm-up), and times `session.run` on the same preprocessed array in this
process with the server's thread rule (1 intra-op thread on 2 cores). Prints medians and p90s.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
from PIL import Image
from sklearn.datasets import load_digits

from service.runtime.threads import plan_threads
from service.schema.config import list_versions, load_config
from service.tasks.image import preprocess_image


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _digit_png(size: int) -> bytes:
    """scikit-learn's first digit (a zero), white on black, as a `size` x `size` PNG."""
    gray = np.round(load_digits().images[0] / 16 * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(gray).resize((size, size), Image.Resampling.NEAREST).save(buffer, format="PNG")
    return buffer.getvalue()


def _summary(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)
    return {"median_ms": round(statistics.median(ms), 4), "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 4)}


def _time_raw(model_path: Path, array: np.ndarray, n: int, warmup: int) -> list[float]:
    so = ort.SessionOptions()
    threads = plan_threads(
        instances=1,
        reserved_cores=1,
        model_intra=None,
        model_inter=None,
        server_intra=None,
        server_inter=None,
    )
    so.intra_op_num_threads, so.inter_op_num_threads = threads.intra_op, threads.inter_op
    session = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    feeds = {session.get_inputs()[0].name: array}
    for _ in range(warmup):
        session.run(None, feeds)
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        session.run(None, feeds)
        samples.append(time.perf_counter() - start)
    return samples


def _time_http(url: str, body: bytes, n: int, warmup: int) -> list[float]:
    samples = []
    with httpx.Client(timeout=30) as http:
        for i in range(warmup + n):
            start = time.perf_counter()
            response = http.post(url, content=body, headers={"Content-Type": "application/json"})
            elapsed = time.perf_counter() - start
            response.raise_for_status()
            if i >= warmup:
                samples.append(elapsed)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repository", type=Path, default=Path("models"), help="default: models")
    parser.add_argument("--model", default="digits-cnn", help="an image classifier (default: digits-cnn)")
    parser.add_argument("-n", type=int, default=200, help="timed requests (default: 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests first (default: 20)")
    parser.add_argument("--size", type=int, default=8, help="PNG side in pixels (default: 8)")
    args = parser.parse_args(argv)

    model_dir = args.repository / args.model
    config = load_config(model_dir)
    if config.image is None:
        raise SystemExit(f"{args.model} has no image section; pick an image model")
    model_path = model_dir / str(max(list_versions(model_dir))) / "model.onnx"
    png = _digit_png(args.size)
    array = preprocess_image(png, config.image, "digit")[None]  # (1, C, H, W): what the server feeds
    body = json.dumps({"instances": [{"b64": base64.b64encode(png).decode()}]}).encode()

    port = _free_port()
    env = {**os.environ, "NNSERVE_LOG_LEVEL": "warning", "NNSERVE_GRPC_PORT": "0"}
    command = [
        sys.executable,
        "-m",
        "service",
        "serve",
        "--repository",
        str(args.repository),
        "--port",
        str(port),
    ]
    server = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/v2/models/{args.model}/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("server did not get ready")
            time.sleep(0.05)  # polling interval
        http = _time_http(f"{url}/v1/models/{args.model}:predict", body, args.n, args.warmup)
        raw = _time_raw(model_path, array, args.n, args.warmup)
    finally:
        server.terminate()
        server.wait(timeout=30)
    result = {
        "model": args.model,
        "n": args.n,
        "cpu_cores": len(os.sched_getaffinity(0)),
        "predict_http": _summary(http),
        "onnxruntime_run": _summary(raw),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
