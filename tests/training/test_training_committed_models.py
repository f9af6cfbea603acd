"""The models committed under models/: the I/O contract, the floors, parity, padding behaviour.

Everything runs the committed model.onnx through ONNX Runtime; nothing here retrains.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from tokenizers import Tokenizer
from training_testkit import COMMITTED, FAMILIES, TEXT_FAMILIES

from service.schema.config import METRICS_FILE, MODEL_FILE, TOKENIZER_FILE, ModelConfig, load_config
from training.data.spam import load_spam_split
from training.export import PARITY_TOLERANCE
from training.registry import get_family


@cache
def evaluation(name: str) -> dict[str, Any]:
    return get_family(name).evaluate(COMMITTED, None)


def config(name: str) -> ModelConfig:
    return load_config(COMMITTED / name)


def session(name: str) -> ort.InferenceSession:
    return ort.InferenceSession(str(COMMITTED / name / "1" / MODEL_FILE), providers=["CPUExecutionProvider"])


def shapes(specs: list[Any]) -> list[tuple[str, str, list[int]]]:
    return [(s.name, s.datatype, s.shape) for s in specs]


def test_digits_cnn_config_follows_the_contract() -> None:
    c = config("digits-cnn")
    assert c.task == "image-classification"
    assert shapes(c.inputs) == [("pixels", "FP32", [-1, 1, 8, 8])]
    assert shapes(c.outputs) == [("probabilities", "FP32", [-1, 10])]
    assert c.classification is not None and c.classification.labels == [str(d) for d in range(10)]
    assert c.classification.probabilities == "probabilities"
    assert c.image is not None
    assert (c.image.height, c.image.width, c.image.channels, c.image.ink) == (8, 8, 1, "bright")
    assert c.image.value_range == (0.0, 16.0)


@pytest.mark.parametrize("name", TEXT_FAMILIES)
def test_text_config_follows_the_contract(name: str) -> None:
    c = config(name)
    assert c.task == "text-classification"
    assert shapes(c.inputs) == [("input_ids", "INT64", [-1, -1]), ("attention_mask", "INT64", [-1, -1])]
    assert shapes(c.outputs) == [("probabilities", "FP32", [-1, 2])]
    assert c.classification is not None and c.classification.labels == ["ham", "spam"]
    assert c.classification.positive_label == "spam"
    assert c.text is not None and c.text.tokenizer == TOKENIZER_FILE and c.text.max_length == 128
    assert c.text.padding == ("max_length" if name == "text-lstm" else "longest")
    tokenizer = Tokenizer.from_file(str(COMMITTED / name / "1" / TOKENIZER_FILE))
    assert c.text.pad_token_id == tokenizer.token_to_id("[PAD]")


def test_digits_ae_config_follows_the_contract() -> None:
    c = config("digits-ae")
    assert c.task == "anomaly-detection"
    assert shapes(c.inputs) == [("pixels", "FP32", [-1, 1, 8, 8])]
    assert shapes(c.outputs) == [("score", "FP32", [-1]), ("reconstruction", "FP32", [-1, 1, 8, 8])]
    assert c.anomaly is not None and (c.anomaly.score, c.anomaly.reconstruction) == (
        "score",
        "reconstruction",
    )
    assert "percentile" in c.anomaly.threshold_rule
    assert c.anomaly.threshold == pytest.approx(evaluation("digits-ae")["threshold"])


@pytest.mark.parametrize("name", FAMILIES)
def test_committed_model_is_one_file_with_recorded_parity(name: str) -> None:
    version_dir = COMMITTED / name / "1"
    model = onnx.load(str(version_dir / MODEL_FILE), load_external_data=False)
    assert not any(init.external_data for init in model.graph.initializer)
    metrics = json.loads((version_dir / METRICS_FILE).read_text())
    assert metrics["dry_run"] is False
    assert set(metrics["parity_max_abs_diff"]) == {"1", "7", "64"}
    assert max(metrics["parity_max_abs_diff"].values()) <= PARITY_TOLERANCE
    recorded = {key: value for key, value in metrics["test"].items() if key != "baseline"}
    fresh = {key: value for key, value in evaluation(name).items() if key not in ("model", "version", "baseline")}
    assert recorded == fresh  # metrics.json records the baseline beside the test figures, and no header
    assert config(name).batching.max_batch_size == 64


def test_digits_cnn_meets_its_accuracy_floor() -> None:
    assert evaluation("digits-cnn")["accuracy"] >= 0.98


def test_digits_cnn_scales_raw_pixels_inside_the_graph() -> None:
    from training.data.digits import load_digits_split

    test = load_digits_split().test
    (probabilities,) = session("digits-cnn").run(None, {"pixels": test.x[:32]})
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (probabilities.argmax(axis=1) == test.y[:32]).mean() >= 0.9


def test_digits_cnn_keeps_its_accuracy_on_digits_drawn_smaller_than_the_frame() -> None:
    """Uploads and the drawing pad frame a digit with a margin the training digits rarely have: the test
    digits shrunk to 80% in the middle of the frame must still be read (0.97 for the committed model;
    0.51 when the augmentation repeated edge pixels instead of filling with background)."""
    from PIL import Image

    from training.data.digits import load_digits_split

    test = load_digits_split().test
    shrunk = []
    for digit in test.x[:, 0]:
        big = Image.fromarray((digit * 255 / 16).astype(np.uint8)).resize((64, 64), Image.BILINEAR)
        frame = Image.new("L", (64, 64), 0)
        frame.paste(big.resize((51, 51), Image.BILINEAR), (6, 6))
        shrunk.append(np.asarray(frame.resize((8, 8), Image.BOX), dtype=np.float32) * 16 / 255)
    (probabilities,) = session("digits-cnn").run(None, {"pixels": np.stack(shrunk)[:, None]})
    assert (probabilities.argmax(axis=1) == test.y).mean() >= 0.85


@cache
def baseline() -> dict[str, float]:
    """TF-IDF + logistic regression on the same split, computed here independently of training/."""
    data = load_spam_split()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    classifier = LogisticRegression(C=10.0, max_iter=2000).fit(vectorizer.fit_transform(data.train.texts), data.train.y)
    predicted = classifier.predict(vectorizer.transform(data.test.texts))
    return {"accuracy": accuracy_score(data.test.y, predicted), "f1": f1_score(data.test.y, predicted)}


@pytest.mark.parametrize("name", TEXT_FAMILIES)
def test_text_model_meets_its_floors_beside_the_baseline(name: str) -> None:
    metrics = evaluation(name)
    assert metrics["n"] == len(load_spam_split().test)
    assert metrics["accuracy"] >= 0.97
    assert metrics["f1"] >= 0.90
    assert metrics["baseline"]["accuracy"] == pytest.approx(baseline()["accuracy"])
    assert metrics["baseline"]["f1"] == pytest.approx(baseline()["f1"])


def test_text_lstm_tokenizer_pads_every_message_to_max_length() -> None:
    tokenizer = Tokenizer.from_file(str(COMMITTED / "text-lstm" / "1" / TOKENIZER_FILE))
    encodings = tokenizer.encode_batch(["ok", "see you at 5 " * 60])
    assert [len(e.ids) for e in encodings] == [128, 128]
    assert sum(encodings[0].attention_mask) < 128


def test_text_transformer_answers_alike_alone_and_padded_in_a_batch() -> None:
    tokenizer = Tokenizer.from_file(str(COMMITTED / "text-transformer" / "1" / TOKENIZER_FILE))
    model = session("text-transformer")
    short = "Are you free for lunch today?"
    batch = [
        short,
        "WINNER!! You have been selected to receive a £900 prize reward! Call 09061701461 now " * 3,
    ]

    def run(texts: list[str]) -> np.ndarray:
        encodings = tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return model.run(None, {"input_ids": ids, "attention_mask": mask})[0]

    alone, padded = run([short]), run(batch)
    assert len(tokenizer.encode(short).ids) < len(tokenizer.encode(batch[1]).ids)
    assert np.abs(alone[0] - padded[0]).max() <= 1e-5
    assert padded[1].argmax() == 1


def test_digits_ae_meets_its_auroc_floor() -> None:
    metrics = evaluation("digits-ae")
    assert metrics["auroc"] >= 0.95
    assert metrics["n"] == metrics["n_normal"] + metrics["n_anomalies"]
    assert {"precision", "recall", "threshold"} <= metrics.keys()


def test_digits_ae_score_is_the_mean_squared_error_of_its_reconstruction() -> None:
    from training.data.digits import load_digits_split

    pixels = load_digits_split().test.x[:16]
    score, reconstruction = session("digits-ae").run(None, {"pixels": pixels})
    assert score.shape == (16,) and reconstruction.shape == (16, 1, 8, 8)
    assert np.allclose(score, ((reconstruction - pixels) ** 2).mean(axis=(1, 2, 3)), rtol=1e-4)
    assert reconstruction.min() >= 0.0 and reconstruction.max() <= 16.0
