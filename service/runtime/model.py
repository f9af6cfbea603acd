"""A served model version: its sessions, the one async `infer` every route goes through, and its lifetime.

Why one method: the dynamic batcher and the metrics plug in behind `ServedModel.infer`, so no route may
call `session.run` itself. `infer` takes one request's arrays (batch axis first, text not padded to
anything but that request's own longest sequence), queues them on the batcher of the least busy
instance, and returns every served output for that request (a model without a batch axis, see
`batches`, gets its arrays exactly as shaped, and runs them alone). Each instance (session) has its own
batcher and its own worker thread, so one batch per instance runs at a time and the event loop never blocks;
except on a server limited to one core, where batches run on the loop itself (`NNSERVE_INLINE_INFERENCE`).

Lifetime: requests hold a lease (`acquire`/`release`) from lookup to answer. A hot reload swaps in a
new object and `retire`s the old one, which closes only when its last lease is released, so requests
in flight finish on the session they started on; closing then stops its (by then empty) batchers,
drops the sessions and hands their freed memory back to the OS (`service.runtime.memory`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument

from service.batching import BatcherPool, BatchObserver, BatchPolicy, InputRejectedError, RunBatch
from service.errors import ModelNotReady
from service.repository.graph import DimNames, SharedDim, shared_dims
from service.runtime.batch_plan import batch_axis_problem, padding_for, policy_for
from service.runtime.collector import refreeze
from service.runtime.memory import release_freed_memory
from service.runtime.session import ArenaShrink, LoadError, arena_shrink, provider_short_name
from service.runtime.threads import usable_cores
from service.schema.config import CONFIG_FILE, ModelConfig, TensorSpec
from service.settings import CpuArena, InlineInference

log = logging.getLogger(__name__)

Tensors = dict[str, np.ndarray]

_ORT_DETAIL = re.compile(r"running (?P<op>\w+) node\. Name:'(?P<node>[^']*)' Status Message: (?P<message>.*)", re.S)
_SOURCE_LOCATION = re.compile(r"\S*onnxruntime_src\S*\s*|\S+\.(?:h|cc|cpp):\d+\s*")
_FAILED_CHECK = re.compile(r"^.*? was false\.\s*", re.S)
"""The C++ of a failed ORT_ENFORCE (`void onnxruntime::...(...) axis == 1 || ... was false. `) before its words."""
SHAPE_CONFLICT = re.compile(
    r"broadcast|dimension mismatch|dimensions must match|mismatched dimensions|incompatible dimensions", re.I
)
"""ONNX Runtime's FAIL messages for input shapes that cannot be combined inside the graph (element-wise
broadcasting, MatMul, Gemm, Concat, Expand, Where): input-related, unlike its other FAILs (a Reshape the
graph's author got wrong, memory, a provider), which stay server faults."""


def rejection_message(exc: Exception, inputs: Sequence[str]) -> str:
    """ONNX Runtime's INVALID_ARGUMENT (or FAIL over input shapes) in a client's terms: which inputs, which
    node, what it said (without ONNX Runtime's source locations and C++)."""
    text = str(exc)
    match = _ORT_DETAIL.search(text)
    if match is None:
        text = _plain(text)
    else:
        node = f"{match['op']} node {match['node']!r}" if match["node"] else f"{match['op']} node"
        text = f"{node}: {_plain(match['message'])}"
    return f"inputs {list(inputs)}: the model rejected these values at run time: {text[:500]}"


def _plain(message: str) -> str:
    return _FAILED_CHECK.sub("", _SOURCE_LOCATION.sub("", message).strip())


def runs_inline(mode: InlineInference, provider: str, cores: int) -> bool:
    """Whether batches run on the event loop: asked for, or `auto` on one core with the CPU provider.

    On one core a worker thread cannot run beside the event loop, so handing it each batch only adds
    two thread switches per request; an accelerator's runs, though, still overlap with the loop's work.
    """
    return mode == "on" or (mode == "auto" and provider == "cpu" and cores == 1)


class ServedModel:
    """One loaded version of one model; `instances` sessions, each with its own batcher and thread."""

    def __init__(
        self,
        *,
        name: str,
        version: int,
        config: ModelConfig,
        directory: Path,
        inputs: Sequence[TensorSpec],
        outputs: Sequence[TensorSpec],
        sessions: Sequence[ort.InferenceSession],
        input_dims: Mapping[str, DimNames] | None = None,
        cpu_arena: CpuArena = "shrink",
        cpu_arena_shrink_s: float = 1.0,
    ) -> None:
        self.name = name
        self.version = version
        self.config = config
        """Effective config: inputs and outputs are filled in from the graph when config.yaml omits them."""
        self.directory = directory
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self.input_dims: Mapping[str, DimNames] = dict(input_dims or {})
        """Each input's symbolic dimension names as the graph gives them (`service.repository.graph`)."""
        self.shared_dims: tuple[SharedDim, ...] = shared_dims(self.input_dims)
        """Symbolic dimensions several input axes name, which a request must give one size (v2 checks)."""
        self.providers: list[str] = list(sessions[0].get_providers())
        """ONNX Runtime's list for the created session, in priority order; [0] does the work."""
        self.provider = provider_short_name(self.providers[0])
        self.threads = sessions[0].get_session_options().intra_op_num_threads
        self._output_names = [spec.name for spec in self.outputs]
        self.padding = padding_for(config, sessions[0].get_inputs(), sessions[0].get_outputs())
        self.no_batching_reason = batch_axis_problem(self.inputs, self.outputs) or (
            "batching.max_batch_size is 0" if config.batching.max_batch_size == 0 else ""
        )
        """Why requests are not batched along axis 0 (served with their exact shapes); "" when they are."""
        if self.no_batching_reason and config.batching.max_batch_size > 0:
            log.info("batching_off", extra={"model": name, "version": version, "reason": self.no_batching_reason})
        self.batch_policy = self._policy(default_timeout_s=None)
        self._sessions = tuple(sessions)
        self._runs = tuple(self._runner(s, arena_shrink(cpu_arena, cpu_arena_shrink_s)) for s in sessions)
        """One run function per session, each with its own arena shrink schedule."""
        self._executor = ThreadPoolExecutor(
            max_workers=len(sessions), thread_name_prefix=f"ort-{name}-{version}"
        )
        self._observers: tuple[BatchObserver, ...] = ()
        self._inline = False
        self._pool: BatcherPool | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._leases = 0
        self._retired = False
        self._close_callbacks: list[Callable[[ServedModel], None]] = []
        self.closed = False

    def __repr__(self) -> str:
        return f"ServedModel({self.name!r}, version={self.version}, provider={self.provider!r})"

    @property
    def batches(self) -> bool:
        """Whether axis 0 is a batch axis along which the batcher may join requests (Triton's
        `max_batch_size > 0`: its config view then reports dims without it). False: every request runs
        alone, exactly as shaped, and counts as one inference."""
        return self.batch_policy.max_batch_size > 0

    @property
    def max_batch_size(self) -> int:
        """The effective `max_batch_size` in Triton's meaning: 0 = no batch axis (see `batches`)."""
        return self.batch_policy.max_batch_size

    @property
    def preferred_batch_sizes(self) -> tuple[int, ...]:
        """Effective preferred batch sizes (empty when the model does not batch)."""
        return self.batch_policy.preferred_batch_sizes

    @property
    def max_queue_delay_ms(self) -> float:
        """Effective `batching.max_queue_delay_ms`."""
        return self.batch_policy.max_queue_delay_s * 1000

    def configure_batching(
        self,
        *,
        default_timeout_s: float | None,
        observers: Sequence[BatchObserver],
        isolate_failures: bool = False,
        inline: InlineInference = "off",
    ) -> None:
        """Set the server's default deadline, the metrics hooks and where batches run, before the version
        serves.

        The app does this in the repository's prepare hook; a model used without it batches with its
        config alone, in its worker thread, and reports to no one.
        """
        if self._pool is not None:
            raise RuntimeError(f"{self!r}: batching is configured before the first request, not after")
        self.batch_policy = self._policy(default_timeout_s, isolate_failures)
        self._observers = tuple(observers)
        self._inline = runs_inline(inline, self.provider, usable_cores())

    async def infer(self, inputs: Mapping[str, np.ndarray], *, deadline: float | None = None) -> Tensors:
        """Run one request in a batch with others; `deadline` (time.monotonic()) overrides the default.

        Raises the batcher's errors (queue full, deadline, failed run; see service.errors for their
        status codes), or ModelNotReady once the version has closed.
        """
        if self.closed:
            raise ModelNotReady(f"model {self.name!r} version {self.version} was unloaded")
        if self._pool is None:
            self._pool = BatcherPool.create(
                self._runs,
                self.batch_policy,
                self._executor,
                padding=self.padding,
                observers=self._observers,
                name=f"{self.name}/{self.version}",
                inline=self._inline,
            )
        return await self._pool.submit(inputs, deadline=deadline)

    async def run_unbatched(self, inputs: Tensors) -> Tensors:
        """One run on the first session's worker thread (or inline, as batches run), past the batcher: for
        the generation engine, which batches its sequences itself and must not wait `max_queue_delay_ms`
        at every decode step."""
        if self.closed:
            raise ModelNotReady(f"model {self.name!r} version {self.version} was unloaded")
        run = self._runs[0]
        if self._inline:
            return dict(run(inputs))
        return dict(await asyncio.get_running_loop().run_in_executor(self._executor, run, inputs))

    def _runner(self, session: ort.InferenceSession, shrink: ArenaShrink | None) -> RunBatch:
        names = self._output_names

        def run(batch: Tensors) -> Tensors:
            options = None if shrink is None else shrink.options()
            try:
                return dict(zip(names, session.run(names, batch, options), strict=True))
            except InvalidArgument as exc:  # the values, not the server: e.g. a token id past the vocabulary
                raise InputRejectedError(rejection_message(exc, sorted(batch))) from None
            except Fail as exc:  # input shapes the graph cannot combine: the request's, when it ran alone
                if SHAPE_CONFLICT.search(str(exc)) is None:
                    raise
                raise InputRejectedError(rejection_message(exc, sorted(batch))) from None

        return run

    def _policy(self, default_timeout_s: float | None, isolate_failures: bool = False) -> BatchPolicy:
        try:
            return policy_for(self.config, default_timeout_s, isolate_failures, batch_axis=not self.no_batching_reason)
        except ValueError as exc:
            raise LoadError(f"{self.directory.parent / CONFIG_FILE}: {exc}") from None

    def acquire(self) -> None:
        if self.closed:
            raise ModelNotReady(f"model {self.name!r} version {self.version} was unloaded")
        self._leases += 1

    def release(self) -> None:
        self._leases -= 1
        if self._retired and self._leases == 0:
            self._close()

    def retire(self) -> None:
        """Stop serving new requests; close once the requests in flight are done."""
        self._retired = True
        if self._leases == 0:
            self._close()

    def on_close(self, callback: Callable[[ServedModel], None]) -> None:
        """Call `callback(self)` when the version closes, so what others keep for it (a generation engine)
        goes with it at once."""
        self._close_callbacks.append(callback)

    @property
    def in_flight(self) -> int:
        return self._leases

    async def wait_closed(self) -> None:
        """Return once a closed version's batchers have stopped (at once if it never served)."""
        if self._stopping is not None:
            await asyncio.shield(self._stopping)

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        pool, self._pool = self._pool, None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # retired off the event loop (a load that failed): it never served
            loop = None
        if loop is None:
            self._release_sessions()
            release_freed_memory()
        else:
            self._stopping = loop.create_task(self._stop(pool), name=f"stop {self.name}/{self.version}")
        log.info("model_closed", extra={"model": self.name, "version": self.version})
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            callback(self)

    async def _stop(self, pool: BatcherPool | None) -> None:
        """Let the batchers answer what they hold, drop the sessions, and give their memory back."""
        if pool is not None:
            await pool.stop()
            del pool  # its batchers' run functions hold the sessions
        self._release_sessions()
        refreeze()
        await asyncio.to_thread(release_freed_memory)

    def _release_sessions(self) -> None:
        self._executor.shutdown(wait=False)
        self._sessions = ()
        self._runs = ()
