"""The tiny-gpt preset end to end: a dry run into a fresh repository, evaluation, the export checks."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import onnxruntime as ort
import pytest
import torch
from tokenizers import Tokenizer

from service.generation.engine import GenerationEngine
from service.generation.params import SamplingParams
from service.generation.runner import SessionRunner
from service.schema.config import MODEL_FILE, TOKENIZER_FILE, load_config
from training.export import ExportError
from training.family import TrainOptions, TrainResult
from training.fit.decoding import PARITY_FILE, PARITY_PROMPTS, PARITY_TOKENS, check_decoding
from training.models.tiny_gpt import GPTConfig, TinyGPT
from training.presets import tiny_gpt

pytestmark = pytest.mark.slow

PERPLEXITY_FLOOR = 150.0
"""A unigram model of this tokenizer scores about 430 on the held-out plays, the bigram baseline 91 on the
test plays; the committed decoder 93 (validation) and 107 (test)."""


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    repository = tmp_path_factory.mktemp("repository")
    return tiny_gpt.FAMILY.train(TrainOptions(repository=repository, dry_run=True, progress=False))


def test_dry_run_writes_a_complete_version(dry_run: TrainResult) -> None:
    files = {p.name for p in dry_run.version_dir.iterdir()}
    assert {
        MODEL_FILE,
        TOKENIZER_FILE,
        "card.md",
        "metrics.json",
        "curves.png",
        PARITY_FILE,
    } <= files
    assert (dry_run.version_dir / MODEL_FILE).stat().st_size < 8 * 1024 * 1024
    record = json.loads((dry_run.version_dir / PARITY_FILE).read_text())
    assert record["passed"] is True
    assert len(record["prompts"]) == PARITY_PROMPTS
    card = (dry_run.version_dir / "card.md").read_text()
    assert "Dry run" in card and "nnserve-train train tiny-gpt" in card


def test_dry_run_shares_the_fit_code_path(dry_run: TrainResult) -> None:
    """The preset ran `fit --task text-generation`: its metrics.json has the fit layout and the baseline."""
    recorded = json.loads((dry_run.version_dir / "metrics.json").read_text())
    assert recorded["task"] == "text-generation"
    assert recorded["data"]["split"].startswith("by whole play")
    assert recorded["test"]["baseline"]["name"].startswith("bigram")
    assert recorded["hyperparameters"]["context_length"] == tiny_gpt.SETTINGS["context"]


def test_dry_run_config_matches_the_graph(dry_run: TrainResult) -> None:
    config = load_config(dry_run.version_dir.parent)
    assert config.task == "text-generation" and config.generation is not None
    session = ort.InferenceSession(str(dry_run.version_dir / MODEL_FILE), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [t.name for t in config.inputs]
    assert [o.name for o in session.get_outputs()] == [t.name for t in config.outputs]
    g = config.generation
    assert g.past_key_template.format(layer=g.n_layers - 1) in {i.name for i in session.get_inputs()}
    assert g.present_value_template.format(layer=0) in {o.name for o in session.get_outputs()}


@pytest.mark.anyio
async def test_dry_run_version_generates_text(dry_run: TrainResult) -> None:
    config = load_config(dry_run.version_dir.parent)
    session = ort.InferenceSession(str(dry_run.version_dir / MODEL_FILE), providers=["CPUExecutionProvider"])
    runner = SessionRunner(session)
    engine = GenerationEngine.for_model(config, dry_run.version_dir, runner)
    result = await engine.generate("ROMEO:\n", SamplingParams(max_tokens=8, seed=0))
    await engine.close()
    runner.close()
    assert result.completion_tokens == 8 or result.finish_reason == "eos_token"


def test_dry_run_reports_perplexity_from_evaluate(dry_run: TrainResult) -> None:
    """`publish` ran the task's scoring (ONNX Runtime) on the written version, and the preset's `evaluate`
    gives the same figures again from the published files."""
    metrics = dry_run.metrics
    assert math.isclose(metrics["validation_perplexity"], math.exp(metrics["validation_loss"]))
    assert math.isclose(metrics["test_perplexity"], math.exp(metrics["test_loss"]))
    assert 1 < metrics["validation_perplexity"] < 10 * tiny_gpt.SETTINGS["vocab_size"]
    recorded = json.loads((dry_run.version_dir / "metrics.json").read_text())
    assert recorded["test"] == metrics
    again = tiny_gpt.FAMILY.evaluate(dry_run.version_dir.parents[1], dry_run.version)
    assert again["model"] == "tiny-gpt" and again["version"] == dry_run.version
    assert again["test_perplexity"] == pytest.approx(metrics["test_perplexity"], rel=1e-9)


def test_check_decoding_rejects_a_graph_that_differs_from_torch(dry_run: TrainResult, tmp_path: Path) -> None:
    config = load_config(dry_run.version_dir.parent)
    assert config.generation is not None
    torch.manual_seed(1234)
    stranger = TinyGPT(GPTConfig(**config.parameters["hyperparameters"]))
    tokenizer = Tokenizer.from_file(str(dry_run.version_dir / TOKENIZER_FILE))
    with pytest.raises(ExportError, match="differs from torch"):
        check_decoding(
            stranger,
            tokenizer,
            dry_run.version_dir / MODEL_FILE,
            tmp_path / "record.json",
            ("ROMEO:\n", "To be, or not to be"),
            PARITY_TOKENS,
        )
    assert not (tmp_path / "record.json").exists()


def test_committed_model_beats_perplexity_floor(model_config: Any, version_dir: Path) -> None:
    """The bundled model, evaluated now through ONNX Runtime on the held-out plays."""
    metrics = tiny_gpt.FAMILY.evaluate(version_dir.parents[1], int(version_dir.name))
    assert metrics["validation_perplexity"] < PERPLEXITY_FLOOR
    assert metrics["test_perplexity"] < PERPLEXITY_FLOOR
