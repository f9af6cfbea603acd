"""ONNX Runtime session creation and provider choice.

The provider in use is read back from `session.get_providers()` after creation, never assumed from the
request: with onnxruntime-gpu on a machine without a usable GPU, `get_available_providers()` still lists
CUDA and the session silently falls back to the CPU.
"""

from __future__ import annotations

import logging
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


def run_options(cpu_arena: CpuArena) -> ort.RunOptions | None:
    """Options for every `session.run`, built once per version: with `shrink`, the CPU arena gives back
    the regions a run no longer uses when it ends. Without it, the arena keeps its peak: one request at
    a sequence length of 8,192 left the process gigabytes larger for good. Measured cost on small runs:
    within the noise (digits-cnn, text-transformer at 16 tokens), since a run that fits the arena's first
    region frees nothing."""
    if cpu_arena != "shrink":
        return None
    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


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
