"""The thread rule: how many threads each ONNX Runtime session may use.

ONNX Runtime defaults to one intra-op thread per core for *every* session, and its threads spin while
waiting. With the event loop (HTTP parsing, JSON, image decoding) on the same cores, that starves the
server under load. The rule instead gives each model's sessions a share of the cores left after
`reserved_cores`:

    budget = max(1, usable_cores - reserved_cores)
    intra_op_threads = max(1, budget // instances)        # instances = sessions of this model version
    inter_op_threads = 1                                   # sequential execution: the graphs are small

An explicit value wins, most specific first: the model's `execution.intra_op_threads`, then the
server's `NNSERVE_INTRA_OP_THREADS`, then the rule. Several busy models share the same budget; give
each a smaller explicit count when many models are hot at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def usable_cores() -> int:
    """Cores this process may run on (honours taskset/cpusets, unlike os.cpu_count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ThreadPlan:
    intra_op: int
    inter_op: int


def plan_threads(
    *,
    instances: int,
    reserved_cores: int,
    model_intra: int | None,
    model_inter: int | None,
    server_intra: int | None,
    server_inter: int | None,
    cores: int | None = None,
) -> ThreadPlan:
    """Threads for one session of a model version with `instances` sessions (0 in config = ORT default)."""
    budget = max(1, (cores if cores is not None else usable_cores()) - reserved_cores)
    intra = next(v for v in (model_intra, server_intra, max(1, budget // instances)) if v is not None)
    inter = next(v for v in (model_inter, server_inter, 1) if v is not None)
    return ThreadPlan(intra_op=intra, inter_op=inter)
