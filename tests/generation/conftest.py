"""Fixtures: the committed tiny-gpt model, a real ONNX Runtime session on it, engines built on that."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import onnxruntime as ort
import pytest

from service.generation.engine import GenerationEngine
from service.generation.runner import SessionRunner
from service.generation.text import TextTokenizer
from service.schema.config import MODEL_FILE, ModelConfig, list_versions, load_config

MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "tiny-gpt"

EngineFactory = Callable[..., Any]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def model_config() -> ModelConfig:
    return load_config(MODEL_DIR)


@pytest.fixture(scope="session")
def version_dir() -> Path:
    return MODEL_DIR / str(list_versions(MODEL_DIR)[-1])


@pytest.fixture(scope="session")
def session(version_dir: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(version_dir / MODEL_FILE), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="session")
def tokenizer(model_config: ModelConfig, version_dir: Path) -> TextTokenizer:
    assert model_config.generation is not None
    return TextTokenizer.from_file(version_dir / model_config.generation.tokenizer)


@pytest.fixture
def make_engine(
    model_config: ModelConfig, version_dir: Path, session: ort.InferenceSession
) -> Callable[..., Any]:
    """`async with make_engine(max_batch_size=8) as engine:` a real engine on the committed model."""

    @asynccontextmanager
    async def build(**overrides: Any) -> AsyncIterator[GenerationEngine]:
        runner = SessionRunner(session)
        engine = GenerationEngine.for_model(model_config, version_dir, runner)
        if overrides:
            assert model_config.generation is not None
            engine = GenerationEngine(model_config.generation, engine.tokenizer, runner, **overrides)
        try:
            yield engine
        finally:
            await engine.close()
            runner.close()

    return build
