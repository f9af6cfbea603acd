"""ONNX Runtime session creation and provider choice.

The provider in use is read back from `session.get_providers()` after creation, never assumed from the
request: with onnxruntime-gpu on a machine without a usable GPU, `get_available_providers()` still lists
CUDA and the session silently falls back to the CPU.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from service.runtime.threads import ThreadPlan
from service.schema.config import Provider
from service.settings import CpuArena

log = logging.getLogger(__name__)

ORT_PROVIDERS: dict[Provider, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
_SHORT_NAMES = {full: short for short, full in ORT_PROVIDERS.items()}

_OPTIMIZATION = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


class LoadError(Exception):
    """A model version cannot be turned into a session; the message is the reason clients see."""


@dataclass(frozen=True)
class SessionOptions:
    providers: tuple[Provider, ...]
    threads: ThreadPlan
    graph_optimization_level: str = "all"
    spinning: bool = False
    cpu_arena: CpuArena = "shrink"


def provider_short_name(ort_name: str) -> str:
    """`CUDAExecutionProvider` -> `cuda`; unknown providers keep their ONNX Runtime name."""
    return _SHORT_NAMES.get(ort_name, ort_name)


def choose_providers(requested: Sequence[Provider], available: Sequence[str]) -> list[str]:
    """ONNX Runtime names of the requested providers this installation has, in the requested order."""
    chosen = [ORT_PROVIDERS[p] for p in requested if ORT_PROVIDERS[p] in available]
    if not chosen:
        raise LoadError(
            f"execution.providers: none of {list(requested)} is available in this onnxruntime "
            f"(available: {list(available)})"
        )
    return chosen


def _session_options(options: SessionOptions) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.intra_op_num_threads = options.threads.intra_op
    so.inter_op_num_threads = options.threads.inter_op
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = _OPTIMIZATION[options.graph_optimization_level]
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if options.spinning else "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "1" if options.spinning else "0")
    so.log_severity_level = 3  # errors only: ORT's warnings about unused initializers are noise here
    so.enable_cpu_mem_arena = options.cpu_arena != "off"
    return so


class ArenaShrink:
    """Which runs of one session give back the CPU arena's unused regions when they end.

    Without it the arena keeps its peak for good: one request at a sequence length of 8,192 left the
    process gigabytes larger. Shrinking after every run costs the next run its page faults again
    (text-transformer, batches of 32 x 64 tokens: about 9% slower), so at most one run per `every_s`
    shrinks: a huge request's memory is given back by the first run after that interval (itself, if it
    comes after it), at a cost per run of one clock read.
    """

    def __init__(self, every_s: float) -> None:
        self._every_s = every_s
        self._last = -math.inf
        self._options = ort.RunOptions()
        self._options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def options(self) -> ort.RunOptions | None:
        """The run options for the next run: shrinking ones when the interval has passed, else None."""
        now = time.monotonic()
        if now - self._last < self._every_s:
            return None
        self._last = now
        return self._options


def arena_shrink(cpu_arena: CpuArena, every_s: float) -> ArenaShrink | None:
    """One per session (None unless `NNSERVE_CPU_ARENA=shrink`)."""
    return ArenaShrink(every_s) if cpu_arena == "shrink" else None


def create_session(model_path: Path, options: SessionOptions) -> ort.InferenceSession:
    """A session on the first requested provider that really initialises, falling back to the CPU."""
    if not model_path.is_file():
        raise LoadError(f"{model_path}: missing file")
    chosen = choose_providers(options.providers, ort.get_available_providers())
    so = _session_options(options)
    try:
        session = ort.InferenceSession(str(model_path), so, providers=chosen)
    except Exception as exc:
        fallback = ORT_PROVIDERS["cpu"]
        if chosen == [fallback] or fallback not in chosen:
            raise LoadError(f"{model_path}: cannot load ONNX model: {exc}") from None
        log.warning(
            "provider_failed",
            extra={"path": str(model_path), "providers": chosen, "reason": str(exc), "fallback": "cpu"},
        )
        try:
            session = ort.InferenceSession(str(model_path), so, providers=[fallback])
        except Exception as cpu_exc:
            raise LoadError(f"{model_path}: cannot load ONNX model: {cpu_exc}") from None
    in_use = session.get_providers()
    if in_use[0] != chosen[0]:
        log.warning(
            "provider_fallback",
            extra={"path": str(model_path), "requested": chosen[0], "in_use": in_use[0]},
        )
    return session
