"""Tiny but real model repositories for the service tests, built with onnx.helper in well under a second.

- `digits-linear`: multinomial logistic regression fitted on the digits training split, so it really
  classifies digits (about 96%) and accuracy through HTTP can be compared with ONNX Runtime directly.
- `spam-bag`: bag-of-words text classifier over a word-level tokenizer.json (ham/spam).
- `digits-mean`: anomaly detector scoring the squared distance to the mean training digit.
- `calculator`: a user's model with no config.yaml: FP32, INT64 and BYTES inputs and outputs.
"""

from __future__ import annotations

from functools import cache
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

OPSET = [helper.make_opsetid("", 17)]
SPAM_WORDS = ["free", "prize", "win", "winner", "claim", "cash", "urgent", "txt"]
HAM_WORDS = ["hello", "lunch", "see", "you", "later", "home", "thanks", "ok"]


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=OPSET, ir_version=8)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


def digits_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x, train_y, test_x, test_y) from the training package's one split; x is (N, 1, 8, 8) 0..16."""
    from training.data.digits import load_digits_split

    split = load_digits_split()
    return split.train.x, split.train.y, split.test.x, split.test.y


def linear_digits_graph(weights: np.ndarray, bias: np.ndarray) -> onnx.GraphProto:
    nodes = [
        helper.make_node("Flatten", ["pixels"], ["flat"], axis=1),  # (N, 64)
        helper.make_node("Gemm", ["flat", "W", "B"], ["logits"]),  # (N, 10)
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    return helper.make_graph(
        nodes,
        "digits_linear",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        [
            numpy_helper.from_array(weights.astype(np.float32), "W"),
            numpy_helper.from_array(bias.astype(np.float32), "B"),
        ],
    )


@cache
def fit_digits() -> tuple[np.ndarray, np.ndarray]:
    """Logistic-regression weights (64, 10) and bias (10,) on the raw 0..16 training pixels."""
    from sklearn.linear_model import LogisticRegression

    x, y, _, _ = digits_data()
    classifier = LogisticRegression(max_iter=2000, C=0.1).fit(x.reshape(len(x), -1) / 16.0, y)
    return classifier.coef_.T / 16.0, classifier.intercept_


def write_digits_classifier(root: Path, name: str = "digits-linear", version: int = 1) -> None:
    weights, bias = fit_digits()
    _save(linear_digits_graph(weights, bias), root / name / str(version) / "model.onnx")
    write_config(
        root / name,
        ModelConfig(
            task="image-classification",
            inputs=[TensorSpec(name="pixels", datatype="FP32", shape=[-1, 1, 8, 8])],
            outputs=[TensorSpec(name="probabilities", datatype="FP32", shape=[-1, 10])],
            image=ImagePreprocessing(height=8, width=8, value_range=(0.0, 16.0), ink="bright"),
            classification=ClassificationSettings(
                labels=[str(d) for d in range(10)], probabilities="probabilities"
            ),
        ),
    )


def write_spam_classifier(root: Path, name: str = "spam-bag") -> None:
    vocab = {"[PAD]": 0, "[UNK]": 1} | {w: i + 2 for i, w in enumerate(SPAM_WORDS + HAM_WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    (root / name / "1").mkdir(parents=True)
    tokenizer.save(str(root / name / "1" / "tokenizer.json"))
    # One (ham, spam) logit pair per token; padding and unknown words weigh nothing.
    table = np.zeros((len(vocab), 2), dtype=np.float32)
    for word, index in vocab.items():
        table[index] = (0.0, 2.0) if word in SPAM_WORDS else (2.0, 0.0) if word in HAM_WORDS else (0.0, 0.0)
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["per_token"]),  # (N, T, 2)
        helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),  # (N, T)
        helper.make_node("Unsqueeze", ["mask", "axis2"], ["mask3"]),  # (N, T, 1)
        helper.make_node("Mul", ["per_token", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["logits"], keepdims=0),  # (N, 2)
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "spam_bag",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2])],
        [
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        ],
    )
    _save(graph, root / name / "1" / "model.onnx")
    write_config(
        root / name,
        ModelConfig(
            task="text-classification",
            text=TextPreprocessing(max_length=16, padding="longest"),
            classification=ClassificationSettings(labels=["ham", "spam"], probabilities="probabilities"),
        ),
    )


ANOMALY_THRESHOLD = 30.0


def write_anomaly_detector(root: Path, name: str = "digits-mean") -> None:
    x, _, _, _ = digits_data()
    mean = x.mean(axis=0, keepdims=True).astype(np.float32)  # (1, 1, 8, 8)
    nodes = [
        helper.make_node("Sub", ["pixels", "mean"], ["diff"]),
        helper.make_node("Mul", ["diff", "diff"], ["squared"]),
        helper.make_node("ReduceMean", ["squared"], ["score"], axes=[1, 2, 3], keepdims=0),  # (N,)
        helper.make_node("Mul", ["pixels", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "mean"], ["reconstruction"]),  # (N, 1, 8, 8)
    ]
    graph = helper.make_graph(
        nodes,
        "digits_mean",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [
            helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"]),
            helper.make_tensor_value_info("reconstruction", TensorProto.FLOAT, ["batch", 1, 8, 8]),
        ],
        [
            numpy_helper.from_array(mean, "mean"),
            numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        ],
    )
    _save(graph, root / name / "1" / "model.onnx")
    write_config(
        root / name,
        ModelConfig(
            task="anomaly-detection",
            image=ImagePreprocessing(height=8, width=8, value_range=(0.0, 16.0), invert="never"),
            anomaly=AnomalySettings(
                score="score",
                reconstruction="reconstruction",
                threshold=ANOMALY_THRESHOLD,
                threshold_rule="fixed for tests",
            ),
        ),
    )


def calculator_graph() -> onnx.GraphProto:
    nodes = [
        helper.make_node("Add", ["a", "b"], ["sum"]),
        helper.make_node("Add", ["counts", "counts"], ["doubled"]),
        helper.make_node("Identity", ["words"], ["echo"]),
    ]
    return helper.make_graph(
        nodes,
        "calculator",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("counts", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("words", TensorProto.STRING, ["batch"]),
        ],
        [
            helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("doubled", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("echo", TensorProto.STRING, ["batch"]),
        ],
    )


def write_user_model(root: Path, name: str = "calculator", version: int = 1) -> Path:
    """A model dropped in by a user: model.onnx only, no config.yaml."""
    return _save(calculator_graph(), root / name / str(version) / "model.onnx")


def write_corrupt_model(root: Path, name: str = "broken") -> None:
    path = root / name / "1" / "model.onnx"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not an ONNX protobuf \x00\x01\x02" * 10)


def build_repository(root: Path) -> Path:
    """The main test repository: one model per task plus a user's config-less model."""
    root.mkdir(parents=True, exist_ok=True)
    write_digits_classifier(root)
    write_spam_classifier(root)
    write_anomaly_detector(root)
    write_user_model(root)
    return root
