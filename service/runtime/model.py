"""A served model version: its sessions, the one async `infer` every route goes through, and its lifetime.

Why one method: the dynamic batcher and the metrics plug in behind `ServedModel.infer`, so no route may
call `session.run` itself. `infer` takes one request's arrays (batch axis first, text not padded to
anything but that request's own longest sequence) and returns every served output for that request.

Lifetime: requests hold a lease (`acquire`/`release`) from lookup to answer. A hot reload swaps in a
new object and `retire`s the old one, which closes only when its last lease is released, so requests
in flight finish on the session they started on.
"""

from __future__ import annotations

import asyncio
import logging
import queue
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

from service.errors import InferenceFailed, InvalidInput, ModelNotReady
from service.repository.config import ModelConfig, TensorSpec
from service.runtime.session import provider_short_name

log = logging.getLogger(__name__)

Tensors = dict[str, np.ndarray]


class ServedModel:
    """One loaded version of one model; `instances` sessions, each run by its own worker thread."""

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
    ) -> None:
        self.name = name
        self.version = version
        self.config = config
        """Effective config: inputs and outputs are filled in from the graph when config.yaml omits them."""
        self.directory = directory
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self.providers: list[str] = list(sessions[0].get_providers())
        """ONNX Runtime's list for the created session, in priority order; [0] does the work."""
        self.provider = provider_short_name(self.providers[0])
        self.threads = sessions[0].get_session_options().intra_op_num_threads
        self._output_names = [spec.name for spec in self.outputs]
        self._idle: queue.SimpleQueue[ort.InferenceSession] = queue.SimpleQueue()
        for session in sessions:
            self._idle.put(session)
        self._executor = ThreadPoolExecutor(
            max_workers=len(sessions), thread_name_prefix=f"ort-{name}-{version}"
        )
        self._leases = 0
        self._retired = False
        self.closed = False

    def __repr__(self) -> str:
        return f"ServedModel({self.name!r}, version={self.version}, provider={self.provider!r})"

    async def infer(self, inputs: Tensors) -> Tensors:
        """Run one request in a worker thread; the event loop keeps serving meanwhile."""
        if self.closed:
            raise ModelNotReady(f"model {self.name!r} version {self.version} was unloaded")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.run, inputs)

    def run(self, inputs: Tensors) -> Tensors:
        """Blocking `session.run` on an idle session; called only from this model's worker threads."""
        session = self._idle.get()
        try:
            results = session.run(self._output_names, inputs)
        except InvalidArgument as exc:
            raise InvalidInput(f"model {self.name!r} rejected the input: {exc}") from None
        except Exception as exc:
            log.exception("inference_failed", extra={"model": self.name, "version": self.version})
            raise InferenceFailed(f"model {self.name!r} version {self.version} failed: {exc}") from None
        finally:
            self._idle.put(session)
        return dict(zip(self._output_names, results, strict=True))

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

    @property
    def in_flight(self) -> int:
        return self._leases

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._executor.shutdown(wait=False)
        while not self._idle.empty():
            self._idle.get_nowait()
        log.info("model_closed", extra={"model": self.name, "version": self.version})
