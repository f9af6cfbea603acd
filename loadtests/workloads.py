"""What the benchmark sends to each model, and the same work done without a server.

A workload gives three views of one task so every arm does identical work: the HTTP request bodies
(identical for the service and the bare-endpoint floor), a batched in-process step for raw ONNX
Runtime, and the floor's request handler. Tensor models go through Open Inference Protocol v2 JSON
with a fixed shape (text is tokenized here and padded to one length), so the service is measured on
serving, not on tokenization; generation uses the generate extension with greedy decoding, so the
service and the raw decoder produce the same tokens.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson

from loadtests import inputs
from loadtests.decode import GreedyDecoder
from service.schema.config import MODEL_FILE, ModelConfig, list_versions, load_config

NUMPY_TYPES = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64}
DATATYPES = {np.dtype(v): k for k, v in NUMPY_TYPES.items()}


@dataclass(frozen=True)
class ModelFiles:
    name: str
    version: int
    config: ModelConfig
    version_dir: Path

    @property
    def onnx_path(self) -> Path:
        return self.version_dir / MODEL_FILE


def locate(repository: Path, name: str) -> ModelFiles:
    """The newest version of `name` in `repository`."""
    model_dir = repository / name
    versions = list_versions(model_dir) if model_dir.is_dir() else []
    if not versions:
        raise FileNotFoundError(f"no version of {name!r} in {repository}")
    return ModelFiles(name, versions[-1], load_config(model_dir), model_dir / str(versions[-1]))


PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def open_session(path: Path, threads: int, provider: str = "cpu") -> Any:
    """A session with a fixed thread count, so raw and served runs compare like for like."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = list(dict.fromkeys([PROVIDERS[provider], PROVIDERS["cpu"]]))
    return ort.InferenceSession(str(path), options, providers=providers)


class Workload(Protocol):
    model: str
    path: str
    """HTTP path the served arms are sent to."""
    unit: str
    """What one request does, for table headers: `inference` or `generation`."""

    def bodies(self) -> list[bytes]: ...

    def raw_step(self, session: Any, batch: int) -> Callable[[], object]: ...

    def handle(self, session: Any, body: bytes) -> bytes: ...


class TensorWorkload:
    """Batch-1 v2 inference requests over a fixed set of samples (one feed dict each)."""

    unit = "inference"

    def __init__(self, files: ModelFiles, samples: list[dict[str, np.ndarray]]) -> None:
        self.model = files.name
        self.path = f"/v2/models/{files.name}/infer"
        self._samples = samples

    def bodies(self) -> list[bytes]:
        return [
            orjson.dumps(
                {
                    "inputs": [
                        {
                            "name": name,
                            "datatype": DATATYPES[array.dtype],
                            "shape": list(array.shape),
                            "data": array.ravel().tolist(),
                        }
                        for name, array in sample.items()
                    ]
                }
            )
            for sample in self._samples
        ]

    def batch(self, size: int) -> dict[str, np.ndarray]:
        chosen = [self._samples[i % len(self._samples)] for i in range(size)]
        return {name: np.concatenate([s[name] for s in chosen]) for name in chosen[0]}

    def raw_step(self, session: Any, batch: int) -> Callable[[], object]:
        feeds = self.batch(batch)
        return lambda: session.run(None, feeds)

    def handle(self, session: Any, body: bytes) -> bytes:
        request = orjson.loads(body)
        feeds = {
            t["name"]: np.asarray(t["data"], dtype=NUMPY_TYPES[t["datatype"]]).reshape(t["shape"])
            for t in request["inputs"]
        }
        results = session.run(None, feeds)
        outputs = [
            {
                "name": meta.name,
                "datatype": DATATYPES[r.dtype],
                "shape": list(r.shape),
                "data": r.ravel().tolist(),
            }
            for meta, r in zip(session.get_outputs(), results, strict=True)
        ]
        return orjson.dumps({"model_name": self.model, "outputs": outputs})


class GenerationWorkload:
    """Greedy generation of a fixed number of tokens from Shakespeare-like prompts."""

    unit = "generation"

    def __init__(self, files: ModelFiles, max_tokens: int) -> None:
        from tokenizers import Tokenizer

        settings = files.config.generation
        if settings is None:
            raise ValueError(f"{files.name}: config has no generation section")
        self.model = files.name
        self.path = f"/v2/models/{files.name}/generate"
        self.max_tokens = max_tokens
        self._settings = settings
        self._tokenizer = Tokenizer.from_file(str(files.version_dir / settings.tokenizer))
        self._prompts = list(inputs.prompts())

    def bodies(self) -> list[bytes]:
        return [
            orjson.dumps({"text_input": p, "max_tokens": self.max_tokens, "temperature": 0.0}) for p in self._prompts
        ]

    def _ids(self, prompt: str) -> np.ndarray:
        return np.asarray(self._tokenizer.encode(prompt).ids, dtype=np.int64)[None, :]  # (1, T)

    def raw_step(self, session: Any, batch: int) -> Callable[[], object]:
        decoder = GreedyDecoder(session, self._settings)
        prompts = [np.repeat(self._ids(p), batch, axis=0) for p in self._prompts]  # each (B, T)
        turn = itertools.count()
        return lambda: decoder.generate(prompts[next(turn) % len(prompts)], self.max_tokens)

    def handle(self, session: Any, body: bytes) -> bytes:
        request = orjson.loads(body)
        decoder = GreedyDecoder(session, self._settings)
        tokens = decoder.generate(self._ids(request["text_input"]), int(request.get("max_tokens", self.max_tokens)))
        text = self._tokenizer.decode(tokens[0].tolist())
        return orjson.dumps({"model_name": self.model, "text_output": text})


def _digit_samples(files: ModelFiles) -> list[dict[str, np.ndarray]]:
    name = files.config.inputs[0].name if files.config.inputs else "pixels"
    images = inputs.digit_images()[:, None, :, :]  # (N, 1, 8, 8), raw 0..16
    return [{name: images[i : i + 1]} for i in range(len(images))]


def _text_samples(files: ModelFiles) -> list[dict[str, np.ndarray]]:
    from tokenizers import Tokenizer

    text = files.config.text
    assert text is not None
    tokenizer = Tokenizer.from_file(str(files.version_dir / text.tokenizer))
    encoded = [tokenizer.encode(t).ids[: text.max_length] for t in inputs.sms_texts()]
    length = max(map(len, encoded))
    samples = []
    for ids in encoded:
        padded = np.full((1, length), text.pad_token_id, dtype=np.int64)  # (1, L)
        padded[0, : len(ids)] = ids
        sample = {text.input_ids: padded}
        if text.attention_mask:
            sample[text.attention_mask] = (np.arange(length) < len(ids)).astype(np.int64)[None, :]  # (1, L)
        samples.append(sample)
    return samples


def load_workload(repository: Path, name: str, max_tokens: int) -> Workload:
    files = locate(repository, name)
    task = files.config.task
    if task in ("image-classification", "anomaly-detection"):
        return TensorWorkload(files, _digit_samples(files))
    if task == "text-classification":
        return TensorWorkload(files, _text_samples(files))
    if task == "text-generation":
        return GenerationWorkload(files, max_tokens)
    raise ValueError(f"{name}: the benchmark has no workload for task {task!r}")
