"""Padding to the batch's longest sequence vs grouping by length bucket, for a transformer-like encoder.

Not a test: `python -m tests.batching.bench_padding` prints a table (used in docs/batching.md). The model is
built with onnx.helper (embedding, masked multi-head self-attention, feed-forward, layer norms, masked
mean pool, classifier), sized like the bundled text-transformer; sequence lengths follow the SMS corpus'
shape (median ~18 tokens, long tail to 128).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from service.batching import SequencePadding

COARSE = (16, 32, 64, 128)
BANDS = SequencePadding({"input_ids": 0})
"""The batcher's default: power-of-two length bands."""
DRAWS = 5


def encoder(
    vocab: int = 2000, width: int = 64, heads: int = 4, layers: int = 2, ffn: int = 128
) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    head_dim = width // heads
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def weight(name: str, *shape: int) -> str:
        inits.append(
            numpy_helper.from_array((rng.normal(size=shape) / np.sqrt(shape[0])).astype(np.float32), name)
        )
        return name

    def const(name: str, values: list[int] | list[float], dtype: type = np.int64) -> str:
        inits.append(numpy_helper.from_array(np.array(values, dtype=dtype), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    const("heads_shape", [0, 0, heads, head_dim])
    const("merge_shape", [0, 0, width])
    const("axis1", [1])
    const("axes12", [1, 2])
    const("scale", [1.0 / np.sqrt(head_dim)], np.float32)
    const("neg", [-1e9], np.float32)
    const("one", [1.0], np.float32)
    x = node("Gather", [weight("E", vocab, width), "input_ids"], "x0")  # (B, T, D)
    maskf = node("Cast", ["attention_mask"], "maskf", to=TensorProto.FLOAT)  # (B, T)
    bias = node("Mul", [node("Sub", ["one", maskf], "inv"), "neg"], "bias2")
    bias = node("Unsqueeze", [bias, "axes12"], "bias")  # (B, 1, 1, T)
    for i in range(layers):

        def heads_of(name: str, i: int = i, src: str = x) -> str:
            projected = node("MatMul", [src, weight(f"W{name}{i}", width, width)], f"{name}{i}")
            split = node("Reshape", [projected, "heads_shape"], f"{name}h{i}")  # (B, T, H, d)
            return node("Transpose", [split], f"{name}t{i}", perm=[0, 2, 1, 3])  # (B, H, T, d)

        q, k, v = heads_of("q"), heads_of("k"), heads_of("v")
        kt = node("Transpose", [k], f"kT{i}", perm=[0, 1, 3, 2])  # (B, H, d, T)
        scores = node("Mul", [node("MatMul", [q, kt], f"qk{i}"), "scale"], f"s{i}")  # (B, H, T, T)
        probs = node("Softmax", [node("Add", [scores, bias], f"sb{i}")], f"p{i}", axis=-1)
        context = node("Transpose", [node("MatMul", [probs, v], f"c{i}")], f"ct{i}", perm=[0, 2, 1, 3])
        merged = node("Reshape", [context, "merge_shape"], f"m{i}")  # (B, T, D)
        attended = node("MatMul", [merged, weight(f"Wo{i}", width, width)], f"o{i}")
        gamma, beta = const(f"g1{i}", [1.0] * width, np.float32), const(f"b1{i}", [0.0] * width, np.float32)
        x = node("LayerNormalization", [node("Add", [x, attended], f"r1{i}"), gamma, beta], f"n1{i}", axis=-1)
        hidden = node("Relu", [node("MatMul", [x, weight(f"W1{i}", width, ffn)], f"f1{i}")], f"h{i}")
        out = node("MatMul", [hidden, weight(f"W2{i}", ffn, width)], f"f2{i}")
        gamma, beta = const(f"g2{i}", [1.0] * width, np.float32), const(f"b2{i}", [0.0] * width, np.float32)
        x = node("LayerNormalization", [node("Add", [x, out], f"r2{i}"), gamma, beta], f"n2{i}", axis=-1)
    mask3 = node("Unsqueeze", [maskf, const("axis2", [2])], "mask3")  # (B, T, 1)
    summed = node("ReduceSum", [node("Mul", [x, mask3], "xm"), "axis1"], "sum", keepdims=0)  # (B, D)
    pooled = node("Div", [summed, node("ReduceSum", [maskf, "axis1"], "cnt", keepdims=1)], "pooled")
    node("MatMul", [pooled, weight("Wc", width, 2)], "logits")  # (B, 2)
    graph = helper.make_graph(
        nodes,
        "encoder",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    return model


def padded(lengths: list[int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    longest = max(lengths)
    ids = np.zeros((len(lengths), longest), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(1, 2000, size=n)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask}


def by_key(lengths: list[int], key: Callable[[int], int]) -> list[list[int]]:
    groups: dict[int, list[int]] = {}
    for n in lengths:
        groups.setdefault(key(n), []).append(n)
    return list(groups.values())


def median_ms(work: Callable[[], object], repeats: int) -> float:
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    parser.add_argument("--repeats", type=int, default=30, help="timed repetitions per cell (default 30)")
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(encoder().SerializeToString(), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    print(
        f"intra-op threads: {args.threads}; {DRAWS} length draws per row, median of {args.repeats} runs each"
    )
    print("ms per batch of requests (µs per sample); runs per batch in brackets")
    print("| batch | longest (mean) | pad to longest | buckets 16/32/64/128 | batcher's bands | one by one |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in (8, 32, 64):
        draws = [
            np.clip(rng.lognormal(np.log(18), 0.7, size=size).astype(int), 3, 128).tolist()
            for _ in range(DRAWS)
        ]
        plans = {
            "pad": [[d] for d in draws],
            "coarse": [by_key(d, lambda n: next(b for b in COARSE if n <= b)) for d in draws],
            "bands": [by_key(d, BANDS.band) for d in draws],
            "single": [[[n] for n in d] for d in draws],
        }
        cells = []
        for groups_per_draw in plans.values():
            total_ms = 0.0
            for groups in groups_per_draw:
                feeds = [padded(g, rng) for g in groups]
                total_ms += median_ms(lambda feeds=feeds: [session.run(None, f) for f in feeds], args.repeats)
            runs = sum(len(g) for g in groups_per_draw) / DRAWS
            cells.append(f"{total_ms / DRAWS:.2f} ({total_ms / DRAWS / size * 1000:.0f}) [{runs:.1f}]")
        longest = sum(max(d) for d in draws) / DRAWS
        print(f"| {size} | {longest:.0f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
