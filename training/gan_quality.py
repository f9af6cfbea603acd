"""How good a generator is, judged by a trained classifier through ONNX Runtime.

- conditional accuracy: the share of generated images the classifier assigns to the class asked for;
- Fréchet distance between the classifier's penultimate-layer features of generated and held-out real
  images (FID's formula, with the project's own classifier standing in for Inception), beside two
  baselines on the same features: class-mean images plus noise (what a model that learnt only the
  averages would score) and real training images (the floor any generator could reach);
- diversity: mean pairwise pixel distance between images of the same class, divided by the same figure
  for real digits; near 0 means mode collapse (every sample of a class alike).

The classifier's exported graph returns probabilities only; its penultimate features are exposed by
adding that intermediate value as an extra graph output in an in-memory copy (the file is never changed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from scipy import linalg

from service.schema.config import MODEL_FILE

FEATURES_OUTPUT = "nnserve_penultimate_features"


def _penultimate_name(model: onnx.ModelProto, probabilities: str) -> str:
    """The input of the last dense layer: the value feeding the op chain that ends in `probabilities`."""
    producers = {out: node for node in model.graph.node for out in node.output}
    node = producers[probabilities]
    while node.op_type not in ("Gemm", "MatMul"):
        node = producers[node.input[0]]
    return str(node.input[0])


@dataclass
class Judge:
    """A classifier session that also returns penultimate features; batches of any size."""

    session: ort.InferenceSession
    input_name: str
    n_classes: int

    @classmethod
    def open(cls, version_dir: Path, probabilities: str = "probabilities") -> Judge:
        model = onnx.load(str(version_dir / MODEL_FILE))
        feature = _penultimate_name(model, probabilities)
        model.graph.output.append(onnx.helper.make_tensor_value_info(FEATURES_OUTPUT, onnx.TensorProto.FLOAT, None))
        model.graph.node.append(onnx.helper.make_node("Identity", [feature], [FEATURES_OUTPUT]))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        out = next(o for o in session.get_outputs() if o.name == probabilities)
        return cls(session, session.get_inputs()[0].name, int(out.shape[-1]))

    def run(self, images: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """(N, C, H, W) -> (predicted class (N,), features (N, F))."""
        preds, feats = [], []
        for start in range(0, len(images), batch):
            probs, features = self._run(images[start : start + batch])
            preds.append(probs.argmax(axis=1))
            feats.append(features)
        return np.concatenate(preds), np.concatenate(feats).astype(np.float64)

    def _run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outputs = self.session.run(None, {self.input_name: images.astype(np.float32)})
        names = [o.name for o in self.session.get_outputs()]
        return outputs[0], outputs[names.index(FEATURES_OUTPUT)]


@dataclass(frozen=True)
class PixelJudge:
    """Features = the pixels themselves (scaled to 0..1), for generators without a classifier to judge them:
    an unconditional model has no classes, so its Fréchet distance is measured in pixel space."""

    scale: float

    def run(self, images: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
        flat = images.reshape(len(images), -1).astype(np.float64) / self.scale
        return np.zeros(len(images), dtype=np.int64), flat


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between two feature samples (rows)."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2.0 * _trace_sqrt_product(s_a, s_b))


def _trace_sqrt_product(s_a: np.ndarray, s_b: np.ndarray) -> float:
    """Tr((S_a S_b)^(1/2)) as Tr((A S_b A)^(1/2)) with A = S_a^(1/2): symmetric all the way, so it is
    stable when ReLU features leave the covariances singular (where sqrtm of S_a S_b warns and drifts)."""
    w, v = linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    inner = linalg.eigvalsh(root_a @ s_b @ root_a)
    return float(np.sqrt(np.clip(inner, 0.0, None)).sum())


def mean_pairwise_distance(images: np.ndarray, labels: np.ndarray, scale: float) -> float:
    """Mean over classes of the mean Euclidean distance between two different images of that class."""
    per_class = []
    for c in np.unique(labels):
        x = images[labels == c].reshape(int((labels == c).sum()), -1).astype(np.float64) / scale
        squared = (x**2).sum(axis=1)
        d2 = np.maximum(squared[:, None] + squared[None, :] - 2.0 * x @ x.T, 0.0)
        n = len(x)
        per_class.append(float(np.sqrt(d2).sum() / (n * (n - 1))))
    return float(np.mean(per_class))


def class_mean_baseline(
    train_x: np.ndarray, train_y: np.ndarray, labels: np.ndarray, seed: int, top: float
) -> np.ndarray:
    """Each class's mean training image plus Gaussian noise with that class's per-pixel spread."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(labels), *train_x.shape[1:]), dtype=np.float32)
    for c in np.unique(labels):
        rows = train_x[train_y == c]
        where = labels == c
        noise = rng.standard_normal((int(where.sum()), *train_x.shape[1:]))
        out[where] = np.clip(rows.mean(axis=0) + rows.std(axis=0) * noise, 0.0, top)
    return out


@dataclass(frozen=True)
class Reference:
    """Real images the generated ones are compared with, with their features computed once."""

    judge: Judge | PixelJudge
    held_out_features: np.ndarray
    real_diversity: float
    scale: float

    @classmethod
    def build(cls, judge: Judge | PixelJudge, held_out: np.ndarray, held_out_y: np.ndarray, scale: float) -> Reference:
        _, features = judge.run(held_out)
        return cls(judge, features, mean_pairwise_distance(held_out, held_out_y, scale), scale)

    def score(self, images: np.ndarray, asked: np.ndarray) -> dict[str, float]:
        """Conditional accuracy, Fréchet distance and diversity ratio of generated `images`."""
        predicted, features = self.judge.run(images)
        return {
            "conditional_accuracy": float((predicted == asked).mean()),
            "frechet_distance": frechet_distance(features, self.held_out_features),
            "diversity_ratio": mean_pairwise_distance(images, asked, self.scale) / self.real_diversity,
        }

    def frechet_to(self, images: np.ndarray) -> float:
        return frechet_distance(self.judge.run(images)[1], self.held_out_features)
