"""Giving the memory of a closed model version back to the operating system.

glibc's malloc keeps freed memory in its arenas for reuse, so after an ONNX Runtime session is destroyed
(weights, arena, buffers) most of its pages stay mapped and the process's RSS does not fall; under hot
reloads it creeps up. `malloc_trim(0)` returns the free pages of every arena. C libraries without it
(musl, macOS) skip this step.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _malloc_trim()


def release_freed_memory() -> bool:
    """Return freed heap memory to the OS; True when some was returned. Takes milliseconds: call it off
    the event loop."""
    return _TRIM is not None and bool(_TRIM(0))
