"""`fit --task text-generation`: the options the tiny-gpt preset needed (heads, dropout, steps per epoch,
served token limit), their refusals, and a run that is the same in any process for the same seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from service.schema.config import load_config
from training.cli import main

SMALL = ["--context", "32", "--width", "32", "--layers", "1", "--vocab-size", "384", "--no-progress", "--seed", "0"]
"""A decoder that trains and exports in seconds on 2 cores."""
ROOT = Path(__file__).resolve().parents[2]


def fit_args(repository: Path, data: Path, *extra: str) -> list[str]:
    return ["fit", "gpt", "--task", "text-generation", "--data", str(data), "--repository", str(repository), *extra]


def metrics_of(repository: Path) -> dict[str, Any]:
    recorded: dict[str, Any] = json.loads((repository / "gpt" / "1" / "metrics.json").read_text())
    return recorded


def test_fit_generation_options_set_heads_dropout_steps_and_token_limit(
    fit_data: dict[str, Path], tmp_path: Path
) -> None:
    options = ["--heads", "2", "--dropout", "0", "--steps-per-epoch", "3", "--max-tokens-limit", "20", "--epochs", "1"]
    assert main(fit_args(tmp_path, fit_data["plays"], *SMALL, *options)) == 0
    generation = load_config(tmp_path / "gpt").generation
    assert generation is not None
    assert (generation.n_heads, generation.head_dim) == (2, 16)
    assert (generation.max_tokens_limit, generation.default_max_tokens) == (20, 16)
    assert metrics_of(tmp_path)["hyperparameters"]["dropout"] == 0.0
    assert "an epoch is 3 batches of 16 random windows" in (tmp_path / "gpt" / "1" / "card.md").read_text()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--heads", "3"], "--heads 3 does not divide the model width 32"),
        (["--max-tokens-limit", "33"], "--max-tokens-limit 33 exceeds the context of 32 tokens"),
    ],
)
def test_fit_generation_refuses_options_the_graph_cannot_honour(
    fit_data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str], message: str
) -> None:
    assert main(fit_args(tmp_path, fit_data["plays"], *SMALL, *option, "--dry-run")) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "gpt").exists()


def test_fit_generation_is_the_same_in_two_processes_with_one_seed(fit_data: dict[str, Path], tmp_path: Path) -> None:
    """Same seed, fresh interpreters with different hash seeds: the same weights, so the same perplexity
    (the weights were once drawn before seeding, and two runs differed: 69.9 vs 86.1)."""
    figures = []
    for hash_seed in ("1", "2"):
        repository = tmp_path / hash_seed
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "training", *fit_args(repository, fit_data["plays"], *SMALL, "--dry-run")]
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
        test = metrics_of(repository)["test"]
        figures.append((test["test_perplexity"], test["validation_perplexity"]))
    assert figures[0] == figures[1]
