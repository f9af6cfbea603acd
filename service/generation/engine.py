"""The generation engine: one asyncio scheduler that decodes every active request together.

Each turn of the scheduler is one step boundary:
1. drop sequences whose client went away (cancelled);
2. admit waiting requests up to `max_batch_size` sequences and prefill them together (one whose deadline
   passed while it waited fails with the batcher's DeadlineExceededError instead, as a timer also
   ensures between steps; once admitted a sequence runs to its end) (prompts
   left-padded, past length 0); their first token comes from the prefill logits;
3. merge them into the decode batch (continuous batching: they join sequences already mid-way);
4. run one decode step for every active sequence in lock-step, sample each row with that sequence's
   own parameters and random generator, and retire the sequences that finished.

Exactness: the exported graph gives each row bit-identical logits whatever its padding and its
neighbours (see `training/models/tiny_gpt.py`), and every sequence samples from its own seeded
generator, so a request gets the same tokens alone or in any batch. tests/generation checks it.

The graph runs through an async `Run` (a worker thread), so the event loop keeps accepting requests
and streaming text while the model computes; only the scheduler task touches the batch state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from service.batching.errors import DeadlineExceededError, QueueFullError
from service.errors import InferenceFailed, ModelNotReady, ServiceError
from service.generation.cache import KVCache
from service.generation.errors import InvalidGenerationParameter
from service.generation.observer import EngineStatistics, GenerationObserver, StepKind, StepReport
from service.generation.params import SamplingParams, check_params, resolve_max_tokens
from service.generation.runner import Run, Tensors
from service.generation.sampling import choose_token
from service.generation.stream import FinishReason, GenerationResult, GenerationStream
from service.generation.text import IncrementalDecoder, StopMatcher, TextTokenizer
from service.schema.config import GenerationSettings, ModelConfig

log = logging.getLogger(__name__)

QUEUE_FULL_RETRY_AFTER_S = 1.0


@dataclass(eq=False)
class _Sequence:
    prompt_ids: list[int]
    params: SamplingParams
    max_tokens: int
    rng: np.random.Generator
    decoder: IncrementalDecoder
    stopper: StopMatcher
    stream: GenerationStream
    submitted: float
    deadline: float | None = None
    """time.monotonic() after which the sequence, if still waiting, fails with DeadlineExceededError."""
    queued_at: float = 0.0
    """time.monotonic() at submission (the deadline's clock)."""
    expiry: asyncio.TimerHandle | None = None
    length: int = 0
    """Tokens in the cache; the position of the next token fed."""
    last_token: int = -1
    generated: int = 0
    first_token_at: float | None = None
    last_token_at: float | None = None
    parts: list[str] = field(default_factory=list)
    finished: bool = False

    @property
    def cancelled(self) -> bool:
        return self.stream.cancelled

    def emit(self, text: str) -> None:
        if text:
            self.parts.append(text)
            self.stream.emit(text)


class GenerationEngine:
    """Text generation for one model version; `submit` returns a stream, `generate` the whole result."""

    def __init__(
        self,
        settings: GenerationSettings,
        tokenizer: TextTokenizer,
        run: Run,
        *,
        max_batch_size: int = 16,
        max_queue_size: int = 256,
        queue_delay_s: float = 0.0,
        default_timeout_s: float | None = None,
        observer: GenerationObserver | None = None,
    ) -> None:
        self.settings = settings
        self.tokenizer = tokenizer
        self._run_model = run
        self._capacity = max(1, max_batch_size)
        """Most sequences decoded together; 0 or 1 in the config means one at a time."""
        self._max_queue = max_queue_size
        self._queue_delay_s = queue_delay_s
        """How long an idle engine waits after the first request, so a burst shares one prefill."""
        self._default_timeout_s = default_timeout_s
        """A waiting sequence's deadline when its request sets none (the batcher's default_timeout_s)."""
        self._observer = observer
        layers = range(settings.n_layers)
        self._past_names = [
            t.format(layer=i)
            for i in layers
            for t in (settings.past_key_template, settings.past_value_template)
        ]
        self._present_names = [
            t.format(layer=i)
            for i in layers
            for t in (settings.present_key_template, settings.present_value_template)
        ]
        self._waiting: deque[_Sequence] = deque()
        self._active: list[_Sequence] = []
        self._cache: KVCache | None = None
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.statistics = EngineStatistics()

    @classmethod
    def for_model(
        cls,
        config: ModelConfig,
        version_dir: Path,
        run: Run,
        observer: GenerationObserver | None = None,
        *,
        tokenizer: TextTokenizer | None = None,
        default_timeout_s: float | None = None,
    ) -> GenerationEngine:
        """An engine configured from a model's config.yaml (generation and batching sections); `tokenizer`
        when it was loaded already (at version load), `default_timeout_s` as the version's batch policy has it."""
        if config.generation is None:
            raise ValueError(f"model {config.name!r} has no generation section; its task is {config.task!r}")
        settings = config.generation
        return cls(
            settings,
            tokenizer or TextTokenizer.from_file(version_dir / settings.tokenizer),
            run,
            max_batch_size=config.batching.max_batch_size,
            max_queue_size=config.batching.max_queue_size,
            queue_delay_s=config.batching.max_queue_delay_ms / 1000,
            default_timeout_s=default_timeout_s,
            observer=observer,
        )

    @property
    def active(self) -> int:
        return len(self._active)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def submit(self, prompt: str, params: SamplingParams, *, deadline: float | None = None) -> GenerationStream:
        """Validate and enqueue a request. Raises InvalidGenerationParameter (naming the field),
        QueueFullError, DeadlineExceededError, or ModelNotReady once the engine is closed.

        `deadline` is a `time.monotonic()` time (None: the engine's default timeout, if any), as the
        batcher has it: a sequence still waiting for a place in the decode batch then fails with
        DeadlineExceededError, unrun; one already decoding runs to its end."""
        if self._closed:
            raise ModelNotReady("the generation engine is shut down (model unloaded)")
        check_params(params)
        if not isinstance(prompt, str) or not prompt:
            raise InvalidGenerationParameter("prompt", "must be a non-empty string")
        prompt_ids = self.tokenizer.encode(prompt)
        max_tokens = resolve_max_tokens(params, len(prompt_ids), self.settings)
        if len(self._waiting) >= self._max_queue:
            raise QueueFullError(len(self._waiting), QUEUE_FULL_RETRY_AFTER_S)
        now = time.monotonic()
        if deadline is None and self._default_timeout_s is not None:
            deadline = now + self._default_timeout_s
        if deadline is not None and deadline <= now:
            raise DeadlineExceededError(0.0)
        sequence = _Sequence(
            prompt_ids=prompt_ids,
            params=params,
            max_tokens=max_tokens,
            rng=np.random.default_rng(params.seed),
            decoder=IncrementalDecoder(self.tokenizer),
            stopper=StopMatcher(params.stop),
            stream=GenerationStream(on_cancel=self._poke),
            submitted=time.perf_counter(),
            deadline=deadline,
            queued_at=now,
        )
        if deadline is not None:
            # A timer, as the batcher's: a waiting sequence fails on time even while a long step runs.
            sequence.expiry = asyncio.get_running_loop().call_later(deadline - now, self._expire, sequence)
        self._waiting.append(sequence)
        self.statistics.requests += 1
        self._ensure_scheduler()
        self._wakeup.set()
        return sequence.stream

    async def generate(
        self, prompt: str, params: SamplingParams, *, deadline: float | None = None
    ) -> GenerationResult:
        """Submit and wait for the whole text; cancelling the caller cancels the sequence."""
        stream = self.submit(prompt, params, deadline=deadline)
        try:
            return await stream.collect()
        except asyncio.CancelledError:
            stream.cancel()
            raise

    async def close(self) -> None:
        """Stop the scheduler; requests still waiting or running fail with ModelNotReady."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for sequence in self._waiting:
            self._stop_timer(sequence)
        self._fail(list(self._waiting) + self._active, ModelNotReady("the generation engine was shut down"))
        self._waiting.clear()

    def _expire(self, sequence: _Sequence) -> None:
        """The deadline passed: a sequence still waiting fails with DeadlineExceededError, unrun."""
        sequence.expiry = None
        if sequence.finished or sequence not in self._waiting:
            return
        self._waiting.remove(sequence)
        sequence.finished = True
        sequence.stream.fail(DeadlineExceededError(time.monotonic() - sequence.queued_at))

    def _admit(self, sequence: _Sequence) -> bool:
        """Leave the queue for the decode batch; False (and failed) when its deadline has passed."""
        self._stop_timer(sequence)
        now = time.monotonic()
        if sequence.deadline is not None and sequence.deadline <= now:
            sequence.finished = True
            sequence.stream.fail(DeadlineExceededError(now - sequence.queued_at))
            return False
        return True

    @staticmethod
    def _stop_timer(sequence: _Sequence) -> None:
        if sequence.expiry is not None:
            sequence.expiry.cancel()
            sequence.expiry = None

    def _poke(self) -> None:
        """Wake an idle scheduler (a waiting request was cancelled)."""
        self._wakeup.set()

    def _ensure_scheduler(self) -> None:
        if self._task is None or self._task.done():
            self._wakeup = asyncio.Event()  # bound to the running loop on first use
            self._task = asyncio.get_running_loop().create_task(self._schedule(), name="generation-scheduler")

    async def _schedule(self) -> None:
        while True:
            if not self._active and not self._waiting:
                self._wakeup.clear()
                await self._wakeup.wait()
                if self._queue_delay_s > 0:
                    await asyncio.sleep(self._queue_delay_s)
            await self._step()

    async def _step(self) -> None:
        """One step boundary: drop cancelled, admit and prefill, then one decode step for all."""
        for sequence in [s for s in self._waiting if s.cancelled]:
            self._waiting.remove(sequence)
            self._stop_timer(sequence)
            self._finish(sequence, "cancelled")
        if any(s.cancelled for s in self._active):
            for sequence in self._active:
                if sequence.cancelled:
                    self._finish(sequence, "cancelled")
            self._retire_finished()
        joiners: list[_Sequence] = []
        while self._waiting and len(self._active) + len(joiners) < self._capacity:
            if self._admit(sequence := self._waiting.popleft()):
                joiners.append(sequence)
        try:
            if joiners:
                await self._prefill(joiners)
            if self._active:
                await self._decode()
        except asyncio.CancelledError:
            self._fail(joiners + self._active, ModelNotReady("the generation engine was shut down"))
            raise
        except Exception as exc:
            log.exception("generation_step_failed")
            error = exc if isinstance(exc, ServiceError) else InferenceFailed(f"generation failed: {exc}")
            self._fail(joiners + self._active, error)

    async def _prefill(self, joiners: list[_Sequence]) -> None:
        rows, width = len(joiners), max(len(s.prompt_ids) for s in joiners)
        ids = np.zeros((rows, width), np.int64)
        positions = np.zeros((rows, width), np.int64)
        mask = np.zeros((rows, width), np.int64)
        for r, sequence in enumerate(joiners):
            n = len(sequence.prompt_ids)
            ids[r, width - n :] = sequence.prompt_ids
            positions[r, width - n :] = np.arange(n)
            mask[r, width - n :] = 1
        empty = KVCache.empty(rows, len(self._past_names), self.settings.n_heads, self.settings.head_dim)
        outputs = await self._run(ids, positions, mask, empty, "prefill", int(mask.sum()))
        cache = empty.extended([outputs[n] for n in self._present_names], mask)
        logits = outputs[self.settings.logits][:, -1]  # (rows, vocab)
        for r, sequence in enumerate(joiners):
            sequence.length = len(sequence.prompt_ids)
            self._advance(sequence, logits[r])
        kept = [r for r, s in enumerate(joiners) if not s.finished]
        if kept:
            joined = cache.select(kept)
            self._cache = joined if self._cache is None else KVCache.stack([self._cache, joined])
            self._active.extend(joiners[r] for r in kept)
            self._active_changed()

    async def _decode(self) -> None:
        assert self._cache is not None, "active sequences always have a cache"
        rows = len(self._active)
        ids = np.array([[s.last_token] for s in self._active], np.int64)  # (rows, 1)
        positions = np.array([[s.length] for s in self._active], np.int64)  # (rows, 1)
        new = np.ones((rows, 1), np.int64)
        outputs = await self._run(ids, positions, new, self._cache, "decode", rows)
        self._cache = self._cache.extended([outputs[n] for n in self._present_names], new)
        logits = outputs[self.settings.logits][:, -1]  # (rows, vocab)
        for r, sequence in enumerate(self._active):
            sequence.length += 1
            self._advance(sequence, logits[r])
        self._retire_finished()

    async def _run(
        self,
        ids: np.ndarray,
        positions: np.ndarray,
        new_mask: np.ndarray,
        cache: KVCache,
        kind: StepKind,
        tokens: int,
    ) -> Tensors:
        """One model run on the cache plus new tokens: ids, positions and new_mask are (rows, new)."""
        s = self.settings
        feeds: Tensors = {
            s.input_ids: ids,
            s.position_ids: positions,
            s.attention_mask: np.concatenate([cache.mask, new_mask], axis=1),  # (rows, past + new)
        }
        feeds.update(zip(self._past_names, cache.past, strict=True))
        started = time.perf_counter()
        outputs = await self._run_model(feeds)
        report = StepReport(
            kind=kind, sequences=len(ids), tokens=tokens, seconds=time.perf_counter() - started
        )
        self.statistics.record_step(report)
        if self._observer is not None:
            self._observer.step_executed(report)
        return outputs

    def _advance(self, sequence: _Sequence, logits: np.ndarray) -> None:
        """Sample the sequence's next token from its logits row, stream its text, decide if it is done."""
        if sequence.cancelled:
            self._finish(sequence, "cancelled")
            return
        token = choose_token(logits, sequence.params, sequence.rng)
        now = time.perf_counter()
        if sequence.first_token_at is None:
            sequence.first_token_at = now
            if self._observer is not None:
                self._observer.first_token(now - sequence.submitted)
        sequence.last_token_at = now
        sequence.last_token = token
        sequence.generated += 1
        if token == self.settings.eos_token_id:
            self._finish(sequence, "eos_token")
            return
        text, stopped = sequence.stopper.push(sequence.decoder.push(token))
        sequence.emit(text)
        if stopped:
            self._finish(sequence, "stop_sequence")
        elif sequence.generated >= sequence.max_tokens:
            self._finish(sequence, "length")

    def _finish(self, sequence: _Sequence, reason: FinishReason) -> None:
        if reason in ("length", "eos_token"):
            text, stopped = sequence.stopper.push(sequence.decoder.flush())
            sequence.emit(text)
            if stopped:
                reason = "stop_sequence"
            else:
                sequence.emit(sequence.stopper.flush())
        sequence.finished = True
        first, last = sequence.first_token_at, sequence.last_token_at
        result = GenerationResult(
            text="".join(sequence.parts),
            finish_reason=reason,
            prompt_tokens=len(sequence.prompt_ids),
            completion_tokens=sequence.generated,
            time_to_first_token_s=None if first is None else first - sequence.submitted,
            time_per_output_token_s=(
                (last - first) / (sequence.generated - 1)
                if first is not None and last is not None and sequence.generated > 1
                else None
            ),
            total_s=time.perf_counter() - sequence.submitted,
        )
        self.statistics.record_finish(result)
        if self._observer is not None:
            self._observer.sequence_finished(result)
        sequence.stream.finish(result)

    def _retire_finished(self) -> None:
        kept = [r for r, s in enumerate(self._active) if not s.finished]
        if len(kept) == len(self._active):
            return
        self._active = [self._active[r] for r in kept]
        self._cache = self._cache.select(kept) if kept and self._cache is not None else None
        self._active_changed()

    def _fail(self, sequences: list[_Sequence], error: BaseException) -> None:
        for sequence in sequences:
            if not sequence.finished:
                sequence.finished = True
                sequence.stream.fail(error)
        self._active = [s for s in self._active if not s.finished]
        if not self._active:
            self._cache = None
        self._active_changed()

    def _active_changed(self) -> None:
        if self._observer is not None:
            self._observer.active_changed(len(self._active))
