"""Deadlines in the generation engine, as the batcher has them: a sequence still waiting for a place in
the decode batch when its deadline passes fails with DeadlineExceededError and never runs; one already
decoding runs to its end. The model is the real one, each step slowed by a fixed pause so that who waits
for whom does not depend on the machine's speed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from service.batching.errors import DeadlineExceededError
from service.generation.engine import GenerationEngine
from service.generation.params import SamplingParams
from service.generation.runner import SessionRunner, Tensors

pytestmark = pytest.mark.anyio

STEP_PAUSE_S = 0.01
"""Added to every model run: 40 tokens take at least 0.4 s, well past the 50 ms deadlines below."""
LONG = SamplingParams(max_tokens=40, temperature=0)
SHORT = SamplingParams(max_tokens=2, temperature=0)


@pytest.fixture
def slow_engine(model_config: Any, tokenizer: Any, session: Any) -> Any:
    """`async with slow_engine(**engine_args) as engine`: one sequence decoded at a time by default."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def build(**overrides: Any) -> Any:
        runner = SessionRunner(session)

        async def run(feeds: Tensors) -> Tensors:
            await asyncio.sleep(STEP_PAUSE_S)
            return await runner(feeds)

        engine = GenerationEngine(model_config.generation, tokenizer, run, **{"max_batch_size": 1, **overrides})
        try:
            yield engine
        finally:
            await engine.close()
            runner.close()

    return build


async def test_waiting_sequence_past_its_deadline_fails_unrun(slow_engine: Any) -> None:
    async with slow_engine() as engine:
        running = engine.submit("ROMEO:\n", LONG)
        late = engine.submit("ROMEO:\n", SHORT, deadline=time.monotonic() + 0.05)
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError, match="deadline exceeded after waiting"):
            await late.collect()
        assert time.monotonic() - started < 0.3  # on time, not when the running sequence ends
        assert (await running.collect()).completion_tokens == 40
        assert engine.statistics.snapshot()["generated_tokens"] == 40  # the late one never ran


async def test_default_timeout_applies_when_the_request_sets_none(slow_engine: Any) -> None:
    async with slow_engine(default_timeout_s=0.05) as engine:
        running = engine.submit("ROMEO:\n", LONG)
        late = engine.submit("ROMEO:\n", SHORT)
        with pytest.raises(DeadlineExceededError):
            await late.collect()
        assert (await running.collect()).finish_reason == "length"


async def test_request_deadline_overrides_the_default(slow_engine: Any) -> None:
    async with slow_engine(default_timeout_s=0.05) as engine:
        running = engine.submit("ROMEO:\n", LONG)
        patient = engine.submit("ROMEO:\n", SHORT, deadline=time.monotonic() + 30)
        assert (await patient.collect()).completion_tokens == 2
        assert (await running.collect()).completion_tokens == 40


async def test_decoding_sequence_runs_past_its_deadline(slow_engine: Any) -> None:
    async with slow_engine() as engine:
        result = await engine.generate("ROMEO:\n", LONG, deadline=time.monotonic() + 0.05)
    assert result.completion_tokens == 40


async def test_passed_deadline_is_refused_at_submit(slow_engine: Any) -> None:
    async with slow_engine() as engine:
        with pytest.raises(DeadlineExceededError):
            engine.submit("ROMEO:\n", SHORT, deadline=time.monotonic() - 1)
        assert engine.waiting == 0
