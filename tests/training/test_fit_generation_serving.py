"""Train/serve agreement for `fit --task text-generation`: the held-out perplexity scored over HTTP through
v2 `/infer` on the served graph equals the offline figure in metrics.json, and greedy `/generate` equals
greedy decoding through ONNX Runtime offline, with the tokenizer the fit published."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from testkit.server import Server, running_server
from tokenizers import Tokenizer

from service.schema.config import TOKENIZER_FILE, GenerationSettings, load_config
from training.cli import main
from training.fit.corpus import split_corpus
from training.fit.decoding import OrtDecoder
from training.fit.options import FitOptions
from training.fit.perplexity import EVALUATION_BATCH, summed_nll, window_feeds
from training.fit.tasks.text_generation import encode_parts
from training.fit.windows import stream_windows
from training.models.tiny_gpt import GPTConfig

NAME = "gpt"
SETTINGS = ["--epochs", "4", "--lr", "1e-2", "--context", "32", "--width", "32", "--layers", "1", "--vocab-size", "384"]
"""About 15 s on 2 cores, and trained enough that greedy continuations are not one repeated token."""
NEW_TOKENS = 8


@pytest.fixture(scope="module")
def repository(fit_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fit-gpt")
    args = ["fit", NAME, "--task", "text-generation", "--data", str(fit_data["plays"]), "--repository", str(root)]
    assert main([*args, "--no-progress", "--seed", "0", *SETTINGS]) == 0
    return root


@pytest.fixture(scope="module")
def server(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("fit-gpt-server") / "server.log"
    with running_server(repository, log, require_ready=True) as srv:
        yield srv


def _settings(repository: Path) -> GenerationSettings:
    generation = load_config(repository / NAME).generation
    assert generation is not None
    return generation


def _held_out(repository: Path, data: Path) -> tuple[Tokenizer, list[str], np.ndarray]:
    """The published tokenizer, the held-out text and its tokens, split exactly as the fit split them."""
    tokenizer = Tokenizer.from_file(str(repository / NAME / "1" / TOKENIZER_FILE))
    parts = split_corpus(data, FitOptions(name=NAME, task="text-generation", data=data))
    return tokenizer, parts.test, encode_parts(parts, tokenizer).test


def _v2_input(name: str, array: np.ndarray) -> dict[str, Any]:
    datatype = "INT64" if array.dtype == np.int64 else "FP32"
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": array.ravel().tolist()}


def test_fit_generation_perplexity_over_http_infer_equals_offline(
    repository: Path, server: Server, fit_data: dict[str, Path]
) -> None:
    settings = _settings(repository)
    _, _, tokens = _held_out(repository, fit_data["plays"])
    windows = stream_windows(tokens, settings.context_length)  # (N, T+1)
    total, count = 0.0, 0
    for start in range(0, len(windows), EVALUATION_BATCH):
        chunk = windows[start : start + EVALUATION_BATCH]
        x, y = chunk[:, :-1], chunk[:, 1:]
        body = {
            "inputs": [_v2_input(n, a) for n, a in window_feeds(x, settings).items()],
            "outputs": [{"name": settings.logits}],
        }
        response = httpx.post(f"{server.url}/v2/models/{NAME}/infer", json=body, timeout=60)
        assert response.status_code == 200, response.text
        (output,) = response.json()["outputs"]
        logits = np.asarray(output["data"], np.float32).reshape(output["shape"])
        total += summed_nll(logits, y)
        count += y.size
    offline = json.loads((repository / NAME / "1" / "metrics.json").read_text())["test"]
    assert count == offline["n"]
    assert math.exp(total / count) == pytest.approx(offline["test_perplexity"], rel=1e-4)


def test_fit_generation_greedy_generate_over_http_equals_offline(
    repository: Path, server: Server, fit_data: dict[str, Path]
) -> None:
    settings = _settings(repository)
    tokenizer, test_text, _ = _held_out(repository, fit_data["plays"])
    # Lines cut mid-sentence, so the continuation is not simply the line break after a speaker's name.
    prompts = [line.strip()[:30] for line in "".join(test_text).splitlines() if len(line.strip()) > 30][:6]
    hyper = json.loads((repository / NAME / "1" / "metrics.json").read_text())["hyperparameters"]
    gpt = GPTConfig(**{k: hyper[k] for k in GPTConfig.__dataclass_fields__})
    decoder = OrtDecoder(repository / NAME / "1" / "model.onnx", gpt)
    seen: set[int] = set()
    for prompt in prompts:
        expected = decoder.greedy([tokenizer.encode(prompt).ids], NEW_TOKENS)[0]
        finish = "length"
        if settings.eos_token_id in expected:  # the server stops at the end-of-text token and does not emit it
            expected, finish = expected[: expected.index(settings.eos_token_id)], "eos_token"
        seen.update(expected)
        body = {"text_input": prompt, "parameters": {"max_tokens": NEW_TOKENS, "temperature": 0}}
        response = httpx.post(f"{server.url}/v2/models/{NAME}/generate", json=body, timeout=60)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["text_output"] == tokenizer.decode(expected), prompt
        assert (answer["details"]["completion_tokens"], answer["details"]["finish_reason"]) == (len(expected), finish)
    assert len(seen) >= 2, "every continuation is one repeated token: the comparison would prove little"
