"""Keeping Python's cyclic garbage collector off the objects that live as long as the server.

A full collection walks every tracked object. After start-up that is hundreds of thousands of them
(FastAPI's routes and schemas, pydantic validators, numpy and ONNX Runtime bindings), and under load
each such walk stalled the event loop for 30-45 ms, which was most of the p99 latency measured at 64
clients (docs/benchmarks.md). `gc.freeze()` moves everything alive into a generation the collector
never walks, so later collections look only at the objects requests make. Objects frozen this way are
still freed by reference counting; only cycles among them would outlive the process's need for them.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> int:
    """Collect what start-up left behind, then freeze the rest; returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def refreeze() -> None:
    """After a model version closes: collect among the frozen objects too, then freeze again.

    Frozen objects are never collected, so a closed version's objects caught in reference cycles
    would stay for good; one full pass per unload (tens of milliseconds) frees them. Does nothing
    when nothing was frozen.
    """
    if gc.get_freeze_count():
        gc.unfreeze()
        freeze_long_lived()
