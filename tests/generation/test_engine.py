"""The engine on the committed model: determinism, stopping, batching exactness, cancellation, hooks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from service.batching.errors import QueueFullError
from service.errors import InferenceFailed, ModelNotReady
from service.generation.engine import GenerationEngine
from service.generation.observer import StepReport
from service.generation.params import SamplingParams
from service.generation.runner import SessionRunner, Tensors
from service.generation.stream import GenerationResult
from service.schema.config import ModelConfig

from .test_parity import run_decoder

pytestmark = pytest.mark.anyio

PROMPTS = [
    "ROMEO:\n",
    "To be, or not to be",
    "KING LEAR:\nBlow, winds, and crack your cheeks!",
    "O",
    "HAMLET:\nWhat a piece of work is a man!",
    "First Citizen:\nWe are accounted poor citizens.",
    "JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?",
    "PORTIA:\nThe quality of mercy is not strain'd,",
]


def sampled(seed: int, max_tokens: int = 40) -> SamplingParams:
    return SamplingParams(max_tokens=max_tokens, temperature=0.9, top_k=50, top_p=0.95, seed=seed)


async def test_generate_with_same_seed_gives_same_text(make_engine: Any) -> None:
    async with make_engine() as engine:
        first = await engine.generate("ROMEO:\n", sampled(seed=11))
        again = await engine.generate("ROMEO:\n", sampled(seed=11))
        other = await engine.generate("ROMEO:\n", sampled(seed=12))
    assert first.text == again.text
    assert first.text != other.text


async def test_temperature_zero_equals_raw_greedy_decoding(
    make_engine: Any, session: ort.InferenceSession, model_config: ModelConfig
) -> None:
    async with make_engine() as engine:
        prompt = engine.tokenizer.encode(PROMPTS[2])
        logits = run_decoder(session, model_config, [prompt], steps=30)[0]
        expected = engine.tokenizer.decode([int(np.argmax(row)) for row in logits])
        greedy = await engine.generate(PROMPTS[2], SamplingParams(temperature=0, max_tokens=30))
        top_one = await engine.generate(
            PROMPTS[2], SamplingParams(temperature=1.3, top_k=1, max_tokens=30, seed=5)
        )
    assert greedy.text == expected
    assert top_one.text == expected


async def test_generate_respects_max_tokens(make_engine: Any) -> None:
    async with make_engine() as engine:
        result = await engine.generate("HAMLET:\n", SamplingParams(max_tokens=5, seed=1))
        default = await engine.generate("HAMLET:\n", SamplingParams(temperature=0))
    assert result.completion_tokens == 5
    assert result.finish_reason == "length"
    assert result.prompt_tokens == len(engine.tokenizer.encode("HAMLET:\n"))
    assert default.completion_tokens == engine.settings.default_max_tokens


async def test_generate_ends_before_first_stop_string(make_engine: Any) -> None:
    async with make_engine() as engine:
        free = await engine.generate(PROMPTS[0], SamplingParams(temperature=0, max_tokens=60))
        stop = free.text[len(free.text) // 2 :][:4]
        expected = free.text[: free.text.find(stop)]
        stream = engine.submit(PROMPTS[0], SamplingParams(temperature=0, max_tokens=60, stop=("@@", stop)))
        deltas = [delta async for delta in stream]
    assert stream.result is not None
    assert stream.result.finish_reason == "stop_sequence"
    assert stream.result.text == expected == "".join(deltas)
    assert not any(stop in delta for delta in deltas)


async def test_stream_deltas_join_to_the_result_text(make_engine: Any) -> None:
    async with make_engine() as engine:
        stream = engine.submit(PROMPTS[4], sampled(seed=3, max_tokens=50))
        deltas = [delta async for delta in stream]
        whole = await engine.generate(PROMPTS[4], sampled(seed=3, max_tokens=50))
    assert stream.result is not None
    assert "".join(deltas) == stream.result.text == whole.text
    assert len(deltas) > 5
    assert all(deltas)


async def test_concurrent_generations_equal_one_at_a_time_and_are_decoded_together(make_engine: Any) -> None:
    params = [sampled(seed=100 + i) for i in range(len(PROMPTS))]
    async with make_engine() as engine:
        alone = [(await engine.generate(p, q)).text for p, q in zip(PROMPTS, params, strict=True)]
        assert engine.statistics.max_decode_batch == 1
    async with make_engine(max_batch_size=8) as engine:
        together = await asyncio.gather(
            *(engine.generate(p, q) for p, q in zip(PROMPTS, params, strict=True))
        )
        stats = engine.statistics
    assert [r.text for r in together] == alone
    assert stats.prefill_batch_sizes == {8: 1}
    assert stats.max_decode_batch == 8
    assert stats.decode_batch_sizes[8] >= 20, stats.snapshot()


async def test_requests_joining_mid_decode_equal_decoding_alone(make_engine: Any) -> None:
    """Continuous batching: three requests join a sequence that is already decoding."""
    params = [sampled(seed=7 + i, max_tokens=48) for i in range(4)]
    async with make_engine() as engine:
        alone = [(await engine.generate(p, q)).text for p, q in zip(PROMPTS[:4], params, strict=True)]
    async with make_engine() as engine:
        first = engine.submit(PROMPTS[0], params[0])
        head = [await anext(first) for _ in range(3)]
        assert engine.statistics.decode_steps >= 2, "the first sequence must be mid-way when the others join"
        late = [engine.submit(p, q) for p, q in zip(PROMPTS[1:4], params[1:4], strict=True)]
        results = [await s.collect() for s in (first, *late)]
        stats = engine.statistics
    assert "".join(head) + "".join(alone[0][len("".join(head)) :]) == results[0].text
    assert [r.text for r in results] == alone
    assert stats.prefill_batch_sizes == {1: 1, 3: 1}
    assert stats.max_decode_batch == 4


async def test_cancel_removes_sequence_and_others_continue(make_engine: Any) -> None:
    async with make_engine() as engine:
        reference = await engine.generate(PROMPTS[1], sampled(seed=2))
        doomed = engine.submit(PROMPTS[0], SamplingParams(temperature=0, max_tokens=200))
        survivor = engine.submit(PROMPTS[1], sampled(seed=2))
        for _ in range(3):
            await anext(doomed)
        doomed.cancel()
        cancelled = await doomed.collect()
        kept = await survivor.collect()
        assert engine.active == 0
        stats = engine.statistics
    assert cancelled.finish_reason == "cancelled"
    assert 3 <= cancelled.completion_tokens < 20
    assert kept.text == reference.text
    assert stats.finish_reasons["cancelled"] == 1


async def test_cancel_before_admission_never_runs_the_request(make_engine: Any) -> None:
    async with make_engine(max_batch_size=1) as engine:
        running = engine.submit(PROMPTS[0], SamplingParams(max_tokens=10, seed=1))
        queued = engine.submit(PROMPTS[1], SamplingParams(max_tokens=10, seed=1))
        queued.cancel()
        result = await queued.collect()
        await running.collect()
        stats = engine.statistics
    assert result.finish_reason == "cancelled"
    assert result.completion_tokens == 0
    assert stats.prefill_runs == 1


async def test_submit_refuses_when_queue_is_full(make_engine: Any) -> None:
    async with make_engine(max_queue_size=1) as engine:
        accepted = engine.submit("O", SamplingParams(max_tokens=3))
        with pytest.raises(QueueFullError):
            engine.submit("O", SamplingParams(max_tokens=3))
        assert (await accepted.collect()).completion_tokens == 3


@dataclass
class Recorder:
    steps: list[StepReport] = field(default_factory=list)
    first_tokens: list[float] = field(default_factory=list)
    finished: list[GenerationResult] = field(default_factory=list)
    active: list[int] = field(default_factory=list)

    def step_executed(self, report: StepReport) -> None:
        self.steps.append(report)

    def first_token(self, seconds: float) -> None:
        self.first_tokens.append(seconds)

    def sequence_finished(self, result: GenerationResult) -> None:
        self.finished.append(result)

    def active_changed(self, active: int) -> None:
        self.active.append(active)


async def test_engine_reports_steps_and_timings_to_observer(make_engine: Any) -> None:
    recorder = Recorder()
    async with make_engine(observer=recorder) as engine:
        results = await asyncio.gather(
            *(engine.generate(p, sampled(seed=1, max_tokens=12)) for p in PROMPTS[:3])
        )
    assert [s.kind for s in recorder.steps[:2]] == ["prefill", "decode"]
    assert recorder.steps[0].sequences == 3
    assert recorder.steps[0].tokens == sum(r.prompt_tokens for r in results)
    assert len(recorder.first_tokens) == 3 and min(recorder.first_tokens) > 0
    assert sorted(r.completion_tokens for r in recorder.finished) == [12, 12, 12]
    assert all(r.time_per_output_token_s is not None and r.time_per_output_token_s > 0 for r in results)
    assert recorder.active[0] == 3 and recorder.active[-1] == 0


class Wrapped:
    """A real session runner whose outputs (or failures) a test can bend."""

    def __init__(
        self, session: ort.InferenceSession, eos_after: int | None = None, fail_at: int | None = None
    ):
        self.runner = SessionRunner(session)
        self.calls = 0
        self.eos_after = eos_after
        self.fail_at = fail_at
        self.eos = -1

    async def __call__(self, feeds: Tensors) -> Tensors:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("device lost")
        outputs = await self.runner(feeds)
        if self.eos_after is not None and self.calls > self.eos_after:
            outputs["logits"][:, -1, self.eos] = 1e9
        return outputs


async def test_eos_token_ends_generation(
    session: ort.InferenceSession, model_config: ModelConfig, version_dir: Any
) -> None:
    run = Wrapped(session, eos_after=4)
    engine = GenerationEngine.for_model(model_config, version_dir, run)
    run.eos = engine.settings.eos_token_id
    result = await engine.generate("ROMEO:\n", SamplingParams(max_tokens=50, seed=3))
    await engine.close()
    run.runner.close()
    assert result.finish_reason == "eos_token"
    assert result.completion_tokens == 5


async def test_model_failure_fails_its_streams_and_engine_keeps_serving(
    session: ort.InferenceSession, model_config: ModelConfig, version_dir: Any
) -> None:
    run = Wrapped(session, fail_at=3)
    engine = GenerationEngine.for_model(model_config, version_dir, run)
    streams = [engine.submit(p, SamplingParams(max_tokens=20, seed=1)) for p in PROMPTS[:2]]
    for stream in streams:
        with pytest.raises(InferenceFailed, match="device lost"):
            await stream.collect()
    after = await engine.generate("O", SamplingParams(max_tokens=4, seed=1))
    await engine.close()
    run.runner.close()
    assert after.completion_tokens == 4
    assert engine.active == 0


async def test_close_fails_running_and_waiting_requests(make_engine: Any) -> None:
    async with make_engine(max_batch_size=1) as engine:
        running = engine.submit(PROMPTS[0], SamplingParams(max_tokens=100, seed=1))
        waiting = engine.submit(PROMPTS[1], SamplingParams(max_tokens=100, seed=1))
        await anext(running)
        await engine.close()
        for stream in (running, waiting):
            with pytest.raises(ModelNotReady, match="shut down"):
                await stream.collect()
        with pytest.raises(ModelNotReady):
            engine.submit("O", SamplingParams())
