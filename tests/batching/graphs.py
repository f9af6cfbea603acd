"""Tiny ONNX graphs (built with onnx.helper) for real ONNX Runtime sessions, and a run-call recorder."""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from service.batching import RunBatch, Tensors

OPSET = [helper.make_opsetid("", 17)]
VOCAB, WIDTH = 32, 5


def make_session(model: onnx.ModelProto) -> ort.InferenceSession:
    onnx.checker.check_model(model, full_check=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def session_runner(session: ort.InferenceSession) -> RunBatch:
    names = [o.name for o in session.get_outputs()]

    def run(inputs: Tensors) -> dict[str, np.ndarray]:
        return dict(zip(names, session.run(names, inputs), strict=True))

    return run


def matmul_model() -> onnx.ModelProto:
    """y = tanh(x @ W), x: [batch, 4] float32, y: [batch, 3]."""
    weight = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Tanh", ["xw"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(weight, "W")],
    )
    return helper.make_model(graph, opset_imports=OPSET)


def sequence_model() -> onnx.ModelProto:
    """Masked mean of token embeddings, plus a per-token score that keeps the sequence axis.

    input_ids, attention_mask: [batch, sequence] int64 -> pooled [batch, 5], token_scores [batch, sequence].
    """
    embedding = np.random.default_rng(1).normal(size=(VOCAB, WIDTH)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["E", "input_ids"], ["emb"]),  # (B, T, D)
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),  # (B, T)
        helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),  # (B, T, 1)
        helper.make_node("Mul", ["emb", "mask3"], ["masked"]),  # (B, T, D)
        helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),  # (B, D)
        helper.make_node("ReduceSum", ["maskf", "axis1"], ["count"], keepdims=1),  # (B, 1)
        helper.make_node("Div", ["summed", "count"], ["pooled"]),  # (B, D)
        helper.make_node("ReduceSum", ["masked", "axis2"], ["token_scores"], keepdims=0),  # (B, T)
    ]
    graph = helper.make_graph(
        nodes,
        "sequence_mean",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        ],
        [
            helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", WIDTH]),
            helper.make_tensor_value_info("token_scores", TensorProto.FLOAT, ["batch", "sequence"]),
        ],
        [
            numpy_helper.from_array(embedding, "E"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
        ],
    )
    return helper.make_model(graph, opset_imports=OPSET)


class Recorder:
    """Wraps a run callable, keeping every batch it was given (thread-safe: runs happen in workers)."""

    def __init__(self, run: RunBatch) -> None:
        self._run = run
        self._lock = threading.Lock()
        self.batches: list[Tensors] = []

    def __call__(self, inputs: Tensors) -> Mapping[str, np.ndarray]:
        with self._lock:
            self.batches.append({k: v.copy() for k, v in inputs.items()})
        return self._run(inputs)

    @property
    def sizes(self) -> list[int]:
        return [next(iter(b.values())).shape[0] for b in self.batches]
