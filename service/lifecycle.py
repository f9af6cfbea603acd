"""The server's shutdown state and its count of requests in flight, shared by the middleware (which
counts), the readiness route (which answers 503 once draining) and the uvicorn runner (which drains).

Why a separate object: the signal that starts a drain arrives in uvicorn's signal handler, where only a
flag may be set safely (no logging, no awaiting); everything else reads the flag.
"""

from __future__ import annotations

import time


class Lifecycle:
    def __init__(self) -> None:
        self.in_flight = 0
        """Requests the app is handling now (a streamed answer counts until its last byte)."""
        self.draining_since: float | None = None
        """time.monotonic() of the first SIGTERM (or of the lifespan's shutdown); None while serving."""

    @property
    def draining(self) -> bool:
        return self.draining_since is not None

    def begin_drain(self) -> bool:
        """Mark the server as shutting down (readiness turns 503); True the first time only.

        Safe to call from a signal handler: it only sets an attribute.
        """
        if self.draining_since is not None:
            return False
        self.draining_since = time.monotonic()
        return True
