"""Token choice from one row of logits: greedy, top-k, top-p, seeds."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from service.generation.params import SamplingParams
from service.generation.sampling import choose_token

LOGITS = np.log(np.array([0.05, 0.5, 0.15, 0.3], dtype=np.float32))


def draws(params: SamplingParams, seed: int, n: int = 2000, logits: np.ndarray = LOGITS) -> list[int]:
    rng = np.random.default_rng(seed)
    return [choose_token(logits, params, rng) for _ in range(n)]


def test_choose_token_is_argmax_at_temperature_zero() -> None:
    logits = np.random.default_rng(0).standard_normal(2048).astype(np.float32)
    rng = np.random.default_rng(1)
    assert choose_token(logits, SamplingParams(temperature=0), rng) == int(np.argmax(logits))
    assert rng.random() == np.random.default_rng(1).random(), "greedy must not consume random numbers"


def test_choose_token_with_top_k_one_is_greedy() -> None:
    assert set(draws(SamplingParams(temperature=1.5, top_k=1), seed=3, n=200)) == {1}


def test_choose_token_never_leaves_top_k() -> None:
    assert set(draws(SamplingParams(top_k=2), seed=4)) == {1, 3}


def test_choose_token_keeps_smallest_nucleus_reaching_top_p() -> None:
    # 0.5 + 0.3 = 0.8 reaches top_p; the 0.15 and 0.05 tokens are outside the nucleus.
    assert set(draws(SamplingParams(top_p=0.8), seed=5)) == {1, 3}
    assert set(draws(SamplingParams(top_p=0.81), seed=5)) == {1, 2, 3}


def test_choose_token_follows_the_softmax_distribution() -> None:
    counts = Counter(draws(SamplingParams(), seed=6, n=20_000))
    shares = np.array([counts[i] / 20_000 for i in range(4)])
    assert np.abs(shares - np.exp(LOGITS)).max() < 0.02


def test_choose_token_same_seed_gives_same_draws() -> None:
    params = SamplingParams(temperature=0.9, top_k=3, top_p=0.95)
    assert draws(params, seed=7, n=300) == draws(params, seed=7, n=300)
    assert draws(params, seed=7, n=300) != draws(params, seed=8, n=300)


def test_choose_token_higher_temperature_flattens_choices() -> None:
    cold = Counter(draws(SamplingParams(temperature=0.2), seed=9))
    hot = Counter(draws(SamplingParams(temperature=5.0), seed=9))
    assert cold[1] > 1800  # p^(1/0.2): 0.5 -> 93 %
    assert min(hot[i] for i in range(4)) > 300


@pytest.mark.parametrize("temperature", [5e-324, 1e-310, 1e-300])
def test_choose_token_is_greedy_when_temperature_underflows(temperature: float) -> None:
    logits = np.random.default_rng(3).normal(0, 4, 2048).astype(np.float32)
    params = SamplingParams(temperature=temperature)
    draws = {choose_token(logits, params, np.random.default_rng(seed)) for seed in range(20)}
    assert draws == {int(np.argmax(logits))}
