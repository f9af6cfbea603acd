"""`NNSERVE_MALLOC_ARENA_MAX` (service/runtime/memory.py): threads share at most that many glibc arenas.

Measured in a fresh interpreter (arenas, once made, stay for the life of a process): eight threads each
allocate while the others hold their blocks, the way each reload's session threads do, and glibc's
`malloc_stats()` (on stderr) lists one `Arena N:` per arena made. Without the limit glibc makes one
per thread here (up to 8 per core); with it, at most the limit.
"""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
THREADS = 8
PROGRAM = f"""
import ctypes, threading
from service.runtime.memory import limit_arenas
import sys
limit_arenas(int(sys.argv[1]))
barrier = threading.Barrier({THREADS})
def work():
    block = bytearray(50_000)  # under the mmap threshold: from an arena
    barrier.wait()
    del block
threads = [threading.Thread(target=work) for _ in range({THREADS})]
for thread in threads: thread.start()
for thread in threads: thread.join()
ctypes.CDLL(None).malloc_stats()
"""

pytestmark = pytest.mark.skipif(
    ctypes.util.find_library("c") is None or not hasattr(ctypes.CDLL(None), "malloc_stats"),
    reason="glibc only",
)


def _arenas(limit: int) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MALLOC_ARENA_MAX", None)
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(limit)], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


def test_threads_share_arenas_when_limited() -> None:
    assert 1 <= _arenas(2) <= 2


def test_threads_get_own_arenas_when_not_limited() -> None:
    assert _arenas(0) > 2
