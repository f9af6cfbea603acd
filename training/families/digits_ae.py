"""digits-ae: anomaly detection by reconstruction error, trained on normal digits only."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import precision_score, recall_score, roc_auc_score
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from service.schema.config import AnomalySettings, BatchingSettings, ModelConfig, TensorSpec
from training.augment import PixelDropout
from training.card import CardText
from training.data.anomalies import ANOMALY_KINDS, make_anomalies
from training.data.digits import IMAGE, PIXEL_MAX, load_digits_split
from training.data.splits import describe_split
from training.evaluate import header, open_session, run_in_batches
from training.export import METADATA_PREFIX, ExportSpec
from training.family import Family, TrainOptions, TrainResult
from training.loop import FitConfig, StepOutput, fit, seed_everything
from training.models.autoencoder import AnomalyScorer, AutoencoderConfig, DigitsAutoencoder
from training.publish import Release, publish
from training.repository import resolve_version

NAME = "digits-ae"
FIT = FitConfig(epochs=120, batch_size=64, lr=3e-3, weight_decay=1e-4, patience=15)
CORRUPT = PixelDropout(max_rate=0.5)
THRESHOLD_PERCENTILE = 99.0
THRESHOLD_RULE = (
    f"{THRESHOLD_PERCENTILE:g}th percentile of the anomaly score over the validation digits (normal data "
    "only): about 1% of normal digits score above it"
)
ANOMALIES_PER_KIND = 60
THRESHOLD_KEY = "anomaly_threshold"
"""ONNX metadata key holding the version's own threshold (config.yaml holds the latest version's)."""


def model_config(hyperparameters: dict[str, Any], threshold: float) -> ModelConfig:
    return ModelConfig(
        name=NAME,
        task="anomaly-detection",
        description="Anomaly detector for 8x8 digit images: autoencoder, score = reconstruction error.",
        inputs=[TensorSpec(name="pixels", datatype="FP32", shape=[-1, 1, 8, 8])],
        outputs=[
            TensorSpec(name="score", datatype="FP32", shape=[-1]),
            TensorSpec(name="reconstruction", datatype="FP32", shape=[-1, 1, 8, 8]),
        ],
        batching=BatchingSettings(max_batch_size=64, max_queue_delay_ms=0.0),
        image=IMAGE,
        anomaly=AnomalySettings(
            score="score", reconstruction="reconstruction", threshold=threshold, threshold_rule=THRESHOLD_RULE
        ),
        parameters={"hyperparameters": hyperparameters},
    )


def random_pixels(batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {"pixels": torch.rand(batch, 1, 8, 8, generator=generator) * PIXEL_MAX}


def calibrate(scorer: AnomalyScorer, normal: np.ndarray) -> float:
    with torch.no_grad():
        scores, _ = scorer(torch.from_numpy(normal))
    return float(np.percentile(scores.numpy(), THRESHOLD_PERCENTILE))


def train(options: TrainOptions) -> TrainResult:
    started = time.perf_counter()
    generator = seed_everything(options.seed)
    data = load_digits_split()
    ae_config = AutoencoderConfig()
    model = DigitsAutoencoder(ae_config)
    fit_config = FIT if options.epochs is None else FitConfig(**{**asdict(FIT), "epochs": options.epochs})

    def step(net: torch.nn.Module, batch: tuple[torch.Tensor]) -> StepOutput:
        (x,) = batch
        reconstruction = net(CORRUPT(x, generator) if net.training else x)  # (B, 1, 8, 8), 0..16
        return StepOutput(F.mse_loss(reconstruction / PIXEL_MAX, x / PIXEL_MAX), len(x))

    def loader(x: np.ndarray, shuffle: bool) -> DataLoader[tuple[torch.Tensor, ...]]:
        return DataLoader(
            TensorDataset(torch.from_numpy(x)),
            batch_size=fit_config.batch_size,
            shuffle=shuffle,
            generator=generator,
        )

    result = fit(
        model,
        step,
        loader(data.train.x, True),
        loader(data.val.x, False),
        fit_config,
        desc=NAME,
        dry_run=options.dry_run,
        progress=options.progress,
    )
    scorer = AnomalyScorer(model).eval()
    threshold = calibrate(scorer, data.val.x)
    hyperparameters = asdict(ae_config)
    release = Release(
        config=model_config(hyperparameters, threshold),
        export=ExportSpec(
            module=scorer,
            make_inputs=random_pixels,
            output_names=["score", "reconstruction"],
            dynamic_axes={"pixels": {0: "batch"}},
            metadata={"model": NAME, "hyperparameters": hyperparameters, THRESHOLD_KEY: threshold},
        ),
        fit=result,
        fit_config=fit_config,
        hyperparameters=hyperparameters,
        card=CardText(
            data=(
                "Normal data: scikit-learn's bundled handwritten digits (`load_digits`, 8x8, values "
                f"0..16), {describe_split()}, the same split as digits-cnn. Trained on the "
                f"{len(data.train)} training digits only (all classes are normal); the {len(data.val)} "
                "validation digits drive early stopping and calibrate the threshold."
            ),
            architecture=(
                "Input scaled to 0..1 inside the graph; encoder conv3x3-BN-ReLU, strided conv3x3-BN-ReLU "
                f"(8x8 -> 4x4), dropout, linear to a {ae_config.latent}-dimensional code; decoder "
                "linear-ReLU, transposed conv (4x4 -> 8x8)-BN-ReLU, conv3x3, sigmoid, rescaled to 0..16. "
                "The exported graph returns `score`, the per-image mean squared reconstruction error in "
                "the 0..16 pixel scale, and `reconstruction`."
            ),
            evaluation=(
                f"The {len(data.test)} held-out test digits (normal) plus {ANOMALIES_PER_KIND} synthetic "
                f"anomalies of each kind ({', '.join(ANOMALY_KINDS)}): uniform noise; blank images with "
                "faint noise; 1-3 random straight strokes; filled or outlined rectangles and ellipses; "
                "test digits corrupted by a 4x4 noise block, inversion, or overlaying a second digit. "
                "AUROC of the score; precision and recall (anomaly = positive) at the calibrated "
                "threshold; `detected.<kind>`: share of each kind scoring above the threshold; "
                "`false_positive_rate`: share of normal test digits above it."
            ),
            craft=[
                "loss: mean squared reconstruction error of the clean image (pixels scaled to 0..1)",
                CORRUPT.describe(),
                f"dropout {ae_config.dropout} before the code, batch norm in encoder and decoder",
                f"threshold {threshold:.4f}: {THRESHOLD_RULE}",
            ],
        ),
        extra_metrics={"threshold": threshold, "threshold_rule": THRESHOLD_RULE},
    )
    return publish(release, options, evaluate, started)


def evaluate(repository: Path, version: int | None) -> dict[str, Any]:
    version, version_dir = resolve_version(repository, NAME, version)
    normal = load_digits_split().test.x
    anomalies, kinds = make_anomalies(normal, ANOMALIES_PER_KIND)
    x = np.concatenate([normal, anomalies])
    is_anomaly = np.concatenate([np.zeros(len(normal), dtype=np.int64), np.ones(len(anomalies), dtype=np.int64)])
    session = open_session(version_dir)
    threshold = float(session.get_modelmeta().custom_metadata_map[METADATA_PREFIX + THRESHOLD_KEY])
    scores, _ = run_in_batches(session, {"pixels": x})
    flagged = (scores > threshold).astype(np.int64)
    kind_array = np.array(kinds)
    anomaly_flags = flagged[len(normal) :]
    return {
        **header(NAME, version, len(x)),
        "n_normal": len(normal),
        "n_anomalies": len(anomalies),
        "auroc": float(roc_auc_score(is_anomaly, scores)),
        "threshold": threshold,
        "precision": float(precision_score(is_anomaly, flagged, zero_division=0)),
        "recall": float(recall_score(is_anomaly, flagged, zero_division=0)),
        "false_positive_rate": float(flagged[: len(normal)].mean()),
        "detected": {kind: float(anomaly_flags[kind_array == kind].mean()) for kind in ANOMALY_KINDS},
    }


FAMILY = Family(
    name=NAME,
    summary="convolutional autoencoder on the digits (anomaly detection, reconstruction error)",
    train=train,
    evaluate=evaluate,
)
