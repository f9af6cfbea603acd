"""The server's generation engines: one per served text-generation version, made on its first request.

Why here and not in `ServedModel`: the engine is an asyncio scheduler with its own tokenizer and state,
needed by two routes (generate extension, OpenAI completions) and by nothing else a version serves.

The tokenizer is loaded when the version loads (`prepare`, from the repository's prepare hook), so a
missing or corrupt `tokenizer.json` fails that version with a reason instead of making it READY and
failing every request.

Lifetime follows the version's lease: every generation request holds one (`GenerationLease`) from
lookup until its last byte is sent, so a hot reload cannot close a version under a running sequence.
When a version closes, its engine is dropped and closed at once (the version's close callback);
`close` ends them all at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from dataclasses import dataclass
from typing import Any

from service.generation.engine import GenerationEngine
from service.generation.errors import InvalidGenerationParameter
from service.generation.observer import EngineStatistics, StepReport
from service.generation.stream import GenerationResult
from service.generation.text import TextTokenizer
from service.metrics import Metrics
from service.repository.registry import ModelRepository
from service.runtime.model import ServedModel
from service.runtime.session import LoadError

log = logging.getLogger(__name__)


class MetricsObserver:
    """The engine's `GenerationObserver`, feeding one version's Prometheus metrics.

    The engine runs the model past the batcher (`ServedModel.run_unbatched`), so its model runs are
    recorded here, as the batcher records its own: one execution, its time and its rows (sequences).
    """

    def __init__(self, metrics: Metrics, model: str, version: str) -> None:
        self._metrics = metrics.generation(model, version)
        self._inference_duration = metrics.inference_duration.labels(model, version)
        self._batch_size = metrics.batch_size.labels(model, version)
        self._active = 0

    def step_executed(self, report: StepReport) -> None:
        self._inference_duration.observe(report.seconds)
        self._batch_size.observe(report.sequences)

    def first_token(self, seconds: float) -> None:
        self._metrics.first_token(seconds)

    def sequence_finished(self, result: GenerationResult) -> None:
        """Tokens are counted when a sequence ends. The engine reports a sequence's mean time per token,
        so each of its gaps is recorded as that mean: sums and counts (rates, averages) are exact."""
        self._metrics.tokens_generated(result.completion_tokens)
        if result.time_per_output_token_s is not None:
            for _ in range(result.completion_tokens - 1):
                self._metrics.next_token(result.time_per_output_token_s)

    def active_changed(self, active: int) -> None:
        while self._active < active:
            self._active += 1
            self._metrics.sequence_started()
        while self._active > active:
            self._active -= 1
            self._metrics.sequence_finished()


@dataclass(frozen=True)
class _Prepared:
    """What `prepare` made for a version when it loaded."""

    tokenizer: TextTokenizer
    created: int


class GenerationLease:
    """A request's hold on a version and its engine; `release` (idempotent) when the answer is sent."""

    def __init__(self, registry: GenerationEngines, model: ServedModel, engine: GenerationEngine) -> None:
        self._registry = registry
        self.model = model
        self.engine = engine
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.model.release()
            self._registry.sweep()


class GenerationEngines:
    """Engines by served version (the `ServedModel` object: a reloaded version is a new object)."""

    def __init__(self) -> None:
        self._engines: dict[ServedModel, GenerationEngine] = {}
        self._prepared: weakref.WeakKeyDictionary[ServedModel, _Prepared] = weakref.WeakKeyDictionary()
        self._closing: set[asyncio.Task[None]] = set()

    def prepare(self, model: ServedModel) -> None:
        """At version load (in the loading thread): load the tokenizer of a text-generation version and
        check it against the graph; raise LoadError with the reason, which fails the version."""
        settings = model.config.generation
        if settings is None:
            return
        where = f"{model.name}/{model.version}/{settings.tokenizer}"
        try:
            tokenizer = TextTokenizer.from_file(model.directory / settings.tokenizer)
        except Exception as exc:  # the tokenizers library raises plain Exception for missing and corrupt files
            raise LoadError(f"generation.tokenizer: cannot load {where}: {_first_line(exc)}") from None
        vocabulary = tokenizer.vocabulary_size
        logits = next((spec for spec in model.outputs if spec.name == settings.logits), None)
        if logits is not None and logits.shape and logits.shape[-1] > 0 and vocabulary > logits.shape[-1]:
            raise LoadError(
                f"generation.tokenizer: {where} has {vocabulary} tokens, more than the "
                f"{logits.shape[-1]} logits of output {settings.logits!r}"
            )
        try:
            created = int(model.directory.stat().st_mtime)
        except OSError:
            created = int(time.time())
        self._prepared[model] = _Prepared(tokenizer, created)
        model.on_close(self._version_closed)

    def created(self, model: ServedModel) -> int:
        """When the version folder was made (unix time), as read when it loaded: the folder may have been
        moved or deleted on disk since, and that must not fail a listing of what is served."""
        prepared = self._prepared.get(model)
        return prepared.created if prepared is not None else 0

    def lookup(self, repository: ModelRepository, name: str, version: int | None) -> ServedModel:
        """The served version; ModelNotFound or ModelNotReady from the repository, and
        InvalidGenerationParameter (field `model`) when the model does not generate text."""
        model = repository.lookup(name, version)
        if model.config.generation is None:
            raise InvalidGenerationParameter(
                "model",
                f"{name!r} does not generate text (its task is {model.config.task!r}); "
                "text generation needs a text-generation model",
            )
        return model

    def lease(
        self, repository: ModelRepository, name: str, version: int | None, metrics: Metrics | None
    ) -> GenerationLease:
        """The version to generate with (see `lookup`) and its engine, leased until `release`."""
        self.sweep()
        model = self.lookup(repository, name, version)
        model.acquire()
        try:
            engine = self._engines.get(model) or self._create(model, metrics)
        except BaseException:
            model.release()
            raise
        return GenerationLease(self, model, engine)

    def _create(self, model: ServedModel, metrics: Metrics | None) -> GenerationEngine:
        observer = None if metrics is None else MetricsObserver(metrics, model.name, str(model.version))
        engine = GenerationEngine.for_model(
            model.config,
            model.directory,
            run=model.run_unbatched,
            observer=observer,
            tokenizer=prepared.tokenizer if (prepared := self._prepared.get(model)) else None,
            default_timeout_s=model.batch_policy.default_timeout_s,
        )
        self._engines[model] = engine
        return engine

    def statistics(self, model: ServedModel) -> dict[str, Any]:
        """What the version's engine decoded (zeros before its first request), with the sequences now
        decoding (`active`) and queued (`waiting`)."""
        engine = self._engines.get(model)
        snapshot = (engine.statistics if engine is not None else EngineStatistics()).snapshot()
        return {
            "active": engine.active if engine is not None else 0,
            "waiting": engine.waiting if engine is not None else 0,
            **snapshot,
        }

    def sweep(self) -> None:
        """Close the engines of versions that have closed (retired by a reload or unload)."""
        for model in [m for m in self._engines if m.closed]:
            self._version_closed(model)

    def _version_closed(self, model: ServedModel) -> None:
        """The version closed (its last lease released after a reload or unload): drop its engine now,
        not at the next generation request, and stop its scheduler."""
        engine = self._engines.pop(model, None)
        self._prepared.pop(model, None)
        if engine is None:
            return
        log.info("generation_engine_closed", extra={"model": model.name, "version": model.version})
        with contextlib.suppress(RuntimeError):  # no running loop: nothing was ever scheduled on one
            task = asyncio.get_running_loop().create_task(engine.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Shutdown: stop every engine; requests still running fail with ModelNotReady."""
        engines = list(self._engines.values())
        self._engines.clear()
        await asyncio.gather(*(engine.close() for engine in engines), *self._closing)


def _first_line(exc: Exception) -> str:
    """The error without the absolute path the tokenizers library may add (answers never carry paths)."""
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
