"""`nnserve serve`'s uvicorn, with a graceful shutdown that loses no accepted request.

On SIGTERM (or Ctrl-C):
1. readiness answers 503 at once (`Lifecycle.begin_drain`, set from the signal handler);
2. for `shutdown_delay_s` the server keeps accepting and serving, so a load balancer that polls
   readiness can stop sending traffic before connections are refused;
3. uvicorn stops accepting, closes idle keep-alive connections and waits up to `shutdown_grace_s` for
   every request in flight, queued or running, streams included;
4. the app's lifespan shutdown stops the batchers (each answers what it still holds) and the engines;
5. the process exits 0. uvicorn re-raises the signal once it is done, to die "by the signal"; a
   do-nothing handler is in place by then, because a graceful shutdown is a success, not a kill.

A second signal during the delay skips the rest of the delay.

Slow and oversized clients are bounded at the connection (`service.connections`): head size, head and
body deadlines, open connections; and uvicorn's own limits on concurrency and idle keep-alive apply.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import time
from types import FrameType

import uvicorn
from fastapi import FastAPI

from service.connections import guarded_protocol, sweep
from service.lifecycle import Lifecycle
from service.settings import Settings

log = logging.getLogger(__name__)

HANDLED = (signal.SIGTERM, signal.SIGINT)


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle, delay_s: float) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle
        self.delay_s = delay_s
        self._stop_at: float | None = None
        self._announced = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        first = self.lifecycle.begin_drain()
        if first and self.delay_s > 0:
            self._stop_at = time.monotonic() + self.delay_s
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        """Every 0.1 s on the event loop: log the drain once, end the delay when it is over, and once a
        second end requests whose head or body is overdue (`service.connections`)."""
        if counter % 10 == 0:
            sweep(self.server_state.connections, asyncio.get_running_loop().time())
        if self.lifecycle.draining and not self._announced:
            self._announced = True
            log.info(
                "shutdown_started",
                extra={
                    "in_flight": self.lifecycle.in_flight,
                    "delay_s": self.delay_s,
                    "grace_s": self.config.timeout_graceful_shutdown,
                },
            )
        if self._stop_at is not None and time.monotonic() >= self._stop_at:
            return True
        return await super().on_tick(counter)


def _already_shut_down(sig: int, frame: FrameType | None) -> None:
    """What uvicorn's re-raised signal meets after the graceful shutdown: nothing left to do."""


def serve(app: FastAPI, settings: Settings) -> None:
    """Run `app` until a signal, then drain it as the module docstring says."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        root_path=settings.root_path,
        http=guarded_protocol(
            max_header_bytes=settings.max_header_bytes,
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            max_connections=settings.max_connections,
        ),
        limit_concurrency=settings.max_concurrency,
        timeout_keep_alive=settings.keep_alive_s,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),
    )
    lifecycle: Lifecycle = app.state.lifecycle
    server = GracefulServer(config, lifecycle, settings.shutdown_delay_s)
    for sig in HANDLED:
        signal.signal(sig, _already_shut_down)
    server.run()
    log.info("shutdown_complete", extra={"in_flight": lifecycle.in_flight})
