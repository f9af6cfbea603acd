"""Tiny ONNX models of the configs `nnserve-train fit` writes, built with onnx.helper in milliseconds.

- `table-mlp` (tabular-classification) and `table-ae` (anomaly-detection with a `tabular` section): their
  graphs follow the tabular contract of `service.schema.tabular` as the exported fit models do: the
  numeric slots are imputed with the training median where NaN (IsNaN/Where), get a missing indicator and
  are standardised; the categorical one-hot slots pass through; then a linear layer + Softmax, or the
  squared norm as the anomaly score.
- `colour-means` (image-classification, 3 channels, 20x12, mean/std): its probabilities are the Softmax
  of the per-channel means of its input, so an answer shows exactly what the preprocessing produced.
- `topics` (text-classification with five labels): a bag of words over a word-level tokenizer.
- `vector-ae` (anomaly-detection on plain vectors of 4 numbers, no image or tabular section): the score is
  the squared norm.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, models, pre_tokenizers

from service.schema.config import (
    AnomalySettings,
    ClassificationSettings,
    ImagePreprocessing,
    ModelConfig,
    TensorSpec,
    TextPreprocessing,
    write_config,
)
from service.schema.tabular import TabularColumn, TabularPreprocessing

OPSET = [helper.make_opsetid("", 17)]

SCHEMA = TabularPreprocessing(
    columns=[
        TabularColumn(name="age", kind="numeric"),
        TabularColumn(name="colour", kind="categorical", categories=["red", "green", "blue"]),
        TabularColumn(name="income", kind="numeric"),
        TabularColumn(name="code", kind="categorical", categories=["3", "7.5", "true"]),
    ]
)
"""Feature layout: age [0], colour [1..4] (red, green, blue, unknown), income [5], code [6..9]."""
NUMERIC = [0, 5]
CATEGORICAL = [1, 2, 3, 4, 6, 7, 8, 9]
MEDIAN = np.array([40.0, 30000.0], dtype=np.float32)
MEAN = np.array([42.0, 35000.0], dtype=np.float32)
STD = np.array([12.0, 15000.0], dtype=np.float32)
TABLE_LABELS = ["bronze", "silver", "gold"]
ANOMALY_THRESHOLD = 6.0

COLOUR_IMAGE = ImagePreprocessing(
    height=12, width=20, channels=3, invert="never", value_range=(0.0, 1.0), mean=[0.5, 0.4, 0.3], std=[0.25, 0.2, 0.1]
)
COLOUR_LABELS = ["red", "green", "blue"]
TOPICS = {
    "sport": ["goal", "match", "team"],
    "music": ["song", "band", "guitar"],
    "food": ["pizza", "bread", "soup"],
    "travel": ["train", "flight", "hotel"],
    "weather": ["rain", "snow", "sunny"],
}


def _save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=OPSET, ir_version=8)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)


def _table_front(nodes: list[onnx.NodeProto]) -> list[onnx.TensorProto]:
    """Nodes turning `features` into `hidden` (N, 2 + 2 + 8): standardised numbers, indicators, one-hots."""
    nodes += [
        helper.make_node("Gather", ["features", "numeric_index"], ["raw"], axis=1),  # (N, 2)
        helper.make_node("IsNaN", ["raw"], ["missing"]),
        helper.make_node("Where", ["missing", "median", "raw"], ["filled"]),
        helper.make_node("Sub", ["filled", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["standard"]),
        helper.make_node("Cast", ["missing"], ["indicator"], to=TensorProto.FLOAT),
        helper.make_node("Gather", ["features", "categorical_index"], ["onehot"], axis=1),  # (N, 8)
        helper.make_node("Concat", ["standard", "indicator", "onehot"], ["hidden"], axis=1),  # (N, 12)
    ]
    return [
        numpy_helper.from_array(np.array(NUMERIC, dtype=np.int64), "numeric_index"),
        numpy_helper.from_array(np.array(CATEGORICAL, dtype=np.int64), "categorical_index"),
        numpy_helper.from_array(MEDIAN, "median"),
        numpy_helper.from_array(MEAN, "mean"),
        numpy_helper.from_array(STD, "std"),
    ]


def table_weights() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(13)
    return rng.normal(size=(12, len(TABLE_LABELS))).astype(np.float32), rng.normal(size=3).astype(np.float32)


def _features_input() -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", SCHEMA.n_features])


def write_table_classifier(root: Path, name: str = "table-mlp") -> None:
    nodes: list[onnx.NodeProto] = []
    weights, bias = table_weights()
    initializers = [*_table_front(nodes), numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "B")]
    nodes += [
        helper.make_node("MatMul", ["hidden", "W"], ["product"]),
        helper.make_node("Add", ["product", "B"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    outputs = [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(TABLE_LABELS)])]
    graph = helper.make_graph(nodes, "table_mlp", [_features_input()], outputs, initializers)
    _save(graph, root / name / "1" / "model.onnx")
    write_config(
        root / name,
        ModelConfig(
            task="tabular-classification",
            inputs=[TensorSpec(name="features", datatype="FP32", shape=[-1, SCHEMA.n_features])],
            outputs=[TensorSpec(name="probabilities", datatype="FP32", shape=[-1, len(TABLE_LABELS)])],
            tabular=SCHEMA,
            classification=ClassificationSettings(labels=TABLE_LABELS, probabilities="probabilities"),
        ),
    )


def write_table_anomaly(root: Path, name: str = "table-ae") -> None:
    nodes: list[onnx.NodeProto] = []
    initializers = _table_front(nodes)
    nodes += [helper.make_node("ReduceSumSquare", ["hidden"], ["score"], axes=[1], keepdims=0)]  # (N,)
    outputs = [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"])]
    graph = helper.make_graph(nodes, "table_ae", [_features_input()], outputs, initializers)
    _save(graph, root / name / "1" / "model.onnx")
    write_config(
        root / name,
        ModelConfig(
            task="anomaly-detection",
            inputs=[TensorSpec(name="features", datatype="FP32", shape=[-1, SCHEMA.n_features])],
            outputs=[TensorSpec(name="score", datatype="FP32", shape=[-1])],
            tabular=SCHEMA,
            anomaly=AnomalySettings(score="score", threshold=ANOMALY_THRESHOLD, threshold_rule="fixed for tests"),
        ),
    )


def write_colour_classifier(root: Path, name: str = "colour-means") -> None:
    image = COLOUR_IMAGE
    nodes = [
        helper.make_node("ReduceMean", ["pixels"], ["means"], axes=[2, 3], keepdims=0),  # (N, 3)
        helper.make_node("Softmax", ["means"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "colour_means",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 3, image.height, image.width])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3])],
    )
    _save(graph, root / name / "1" / "model.onnx")
    write_config(
        root / name,
        ModelConfig(
            task="image-classification",
            image=image,
            classification=ClassificationSettings(labels=COLOUR_LABELS, probabilities="probabilities"),
        ),
    )


def write_topic_classifier(root: Path, name: str = "topics") -> None:
    words = [w for topic in TOPICS.values() for w in topic]
    vocab = {"[PAD]": 0, "[UNK]": 1} | {w: i + 2 for i, w in enumerate(words)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    (root / name / "1").mkdir(parents=True)
    tokenizer.save(str(root / name / "1" / "tokenizer.json"))
    table = np.zeros((len(vocab), len(TOPICS)), dtype=np.float32)  # one logit per (token, topic)
    for k, topic_words in enumerate(TOPICS.values()):
        for word in topic_words:
            table[vocab[word], k] = 1.0
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["per_token"]),  # (N, T, 5)
        helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),  # (N, T)
        helper.make_node("Unsqueeze", ["mask", "axis2"], ["mask3"]),  # (N, T, 1)
        helper.make_node("Mul", ["per_token", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["logits"], keepdims=0),  # (N, 5)
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "topics",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(TOPICS)])],
        [
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
        ],
    )
    _save(graph, root / name / "1" / "model.onnx")
    write_config(
        root / name,
        ModelConfig(
            task="text-classification",
            text=TextPreprocessing(max_length=32),
            classification=ClassificationSettings(labels=list(TOPICS), probabilities="probabilities"),
        ),
    )


def write_vector_anomaly(root: Path, name: str = "vector-ae") -> None:
    nodes = [helper.make_node("ReduceSumSquare", ["values"], ["score"], axes=[1], keepdims=0)]  # (N,)
    graph = helper.make_graph(
        nodes,
        "vector_ae",
        [helper.make_tensor_value_info("values", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"])],
    )
    _save(graph, root / name / "1" / "model.onnx")
    write_config(
        root / name,
        ModelConfig(
            task="anomaly-detection",
            anomaly=AnomalySettings(score="score", threshold=1.0, threshold_rule="fixed for tests"),
        ),
    )


def build_task_repository(root: Path) -> Path:
    """Every model above in `root`."""
    write_table_classifier(root)
    write_table_anomaly(root)
    write_colour_classifier(root)
    write_topic_classifier(root)
    write_vector_anomaly(root)
    return root
