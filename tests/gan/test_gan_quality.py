"""The committed digits-gan meets its quality floors, measured through ONNX Runtime by digits-cnn."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import numpy as np
import onnxruntime as ort
from gan_testkit import COMMITTED

from service.schema.config import METRICS_FILE, MODEL_FILE, load_config
from training.export import PARITY_TOLERANCE
from training.registry import get_family

NAME = "digits-gan"


@cache
def figures() -> dict[str, Any]:
    return get_family(NAME).evaluate(COMMITTED, None)


def test_committed_gan_follows_the_contract() -> None:
    config = load_config(COMMITTED / NAME)
    assert config.task == "image-generation"
    assert [(s.name, s.datatype, s.shape) for s in config.inputs] == [
        ("z", "FP32", [-1, 32]),
        ("label", "INT64", [-1]),
    ]
    assert [(s.name, s.datatype, s.shape) for s in config.outputs] == [("image", "FP32", [-1, 1, 8, 8])]
    assert config.image_generation is not None and config.image_generation.labels == [str(d) for d in range(10)]


def test_committed_gan_recorded_parity_and_its_figures() -> None:
    metrics = json.loads((COMMITTED / NAME / "1" / METRICS_FILE).read_text())
    assert metrics["dry_run"] is False
    assert set(metrics["parity_max_abs_diff"]) == {"1", "7", "64"}
    assert max(metrics["parity_max_abs_diff"].values()) <= PARITY_TOLERANCE
    assert metrics["test"] == {k: v for k, v in figures().items() if k not in ("model", "version")}


def test_generated_digits_are_classified_as_asked_above_the_floor() -> None:
    assert figures()["n"] == 1000
    assert figures()["conditional_accuracy"] >= 0.90


def test_frechet_distance_sits_between_real_data_and_the_class_mean_baseline() -> None:
    f = figures()
    real, means = (f["baseline"][k]["frechet_distance"] for k in ("real_train", "class_means"))
    assert real < f["frechet_distance"] < means


def test_generated_digits_keep_at_least_half_the_real_diversity() -> None:
    assert figures()["diversity_ratio"] >= 0.5


def test_generator_accepts_any_batch_size() -> None:
    session = ort.InferenceSession(str(COMMITTED / NAME / "1" / MODEL_FILE), providers=["CPUExecutionProvider"])
    for batch in (1, 7, 64, 100):
        z = np.random.default_rng(batch).standard_normal((batch, 32)).astype(np.float32)
        (image,) = session.run(None, {"z": z, "label": np.arange(batch, dtype=np.int64) % 10})
        assert image.shape == (batch, 1, 8, 8)
        assert image.min() >= 0.0 and image.max() <= 16.0
