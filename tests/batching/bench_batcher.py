"""In-process throughput and latency of the batcher (no HTTP), batching off vs on, for a small MLP.

Not a test: `python -m tests.batching.bench_batcher` prints the table quoted in docs/batching.md. Closed-loop
clients (each sends its next request when the previous one is answered) at several concurrencies; each
cell keeps the fastest of a few rounds, since the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from service.batching import Batcher, BatchPolicy, RunBatch, Tensors
from service.statistics import ModelStatistics


def mlp(features: int = 64, hidden: int = 128, classes: int = 10) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(size=(features, hidden)).astype(np.float32), "W1")
    w2 = numpy_helper.from_array(rng.normal(size=(hidden, classes)).astype(np.float32), "W2")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W1"], ["h"]),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("MatMul", ["r", "W2"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", classes])],
        [w1, w2],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


async def closed_loop(batcher: Batcher, clients: int, per_client: int) -> tuple[float, list[float]]:
    request: Tensors = {"x": np.ones((1, 64), np.float32)}
    latencies: list[float] = []

    async def client() -> None:
        for _ in range(per_client):
            start = time.perf_counter()
            await batcher.submit(request)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    await batcher.stop()
    return clients * per_client / elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2048, help="requests per cell (default 2048)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds per cell, the fastest is kept (default 3)"
    )
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(mlp().SerializeToString(), options, providers=["CPUExecutionProvider"])

    def run(inputs: Tensors) -> dict[str, np.ndarray]:
        return {"probabilities": session.run(["probabilities"], inputs)[0]}

    raw = median_raw_us(run)
    print(f"raw session.run at batch 1: {raw:.0f} µs")
    print("| concurrency | policy | requests/s | p50 ms | p99 ms | mean batch |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    policies = {
        "off (max_batch_size 0)": BatchPolicy(max_batch_size=0),
        "on, delay 0 ms": BatchPolicy(max_batch_size=64, max_queue_delay_s=0.0),
        "on, delay 2 ms": BatchPolicy(max_batch_size=64, max_queue_delay_s=0.002),
    }
    with ThreadPoolExecutor(max_workers=1) as executor:
        for clients in (1, 8, 64):
            for label, policy in policies.items():
                rounds = []
                for _ in range(args.rounds):
                    stats = ModelStatistics("mlp", "1")
                    batcher = Batcher(run, policy, executor, observers=[stats])
                    result = asyncio.run(closed_loop(batcher, clients, max(1, args.requests // clients)))
                    rounds.append((*result, stats))
                rate, latencies, stats = max(rounds, key=lambda r: r[0])
                counts = stats.to_json()
                mean_batch = counts["inference_count"] / counts["execution_count"]
                p50, p99 = (statistics.quantiles(latencies, n=100)[i] * 1000 for i in (49, 98))
                print(f"| {clients} | {label} | {rate:.0f} | {p50:.2f} | {p99:.2f} | {mean_batch:.1f} |")


def median_raw_us(run: RunBatch) -> float:
    feed: Tensors = {"x": np.ones((1, 64), np.float32)}
    times = []
    for _ in range(500):
        start = time.perf_counter()
        run(feed)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


if __name__ == "__main__":
    main()
