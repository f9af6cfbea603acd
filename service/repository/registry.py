"""The live model repository: which versions serve, why the others do not, loading, unloading, hot swap.

All state changes happen on the event loop (loading itself runs in a worker thread), so a swap is one
dict assignment between two requests: a request sees either the old versions or the new ones, and
`ServedModel` leases keep a retired version open until its requests in flight are answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from service.errors import (
    LoadFailed,
    ModelNotFound,
    load_failed,
    no_available_versions,
    unknown_model,
    unknown_version,
    version_not_ready,
)
from service.repository.fingerprint import Fingerprint, fingerprint
from service.repository.loader import LoadOutcome, Prepare, load_model_dir
from service.runtime.model import ServedModel
from service.schema.config import ModelConfig, is_valid_model_name
from service.settings import Settings

log = logging.getLogger(__name__)


class State(StrEnum):
    READY = "READY"
    LOADING = "LOADING"
    UNAVAILABLE = "UNAVAILABLE"


@dataclass(frozen=True)
class VersionStatus:
    version: int | None
    """None when the failure concerns the whole model (bad config.yaml, nothing to serve)."""
    state: State
    reason: str = ""


@dataclass
class ModelEntry:
    name: str
    config: ModelConfig | None = None
    served: dict[int, ServedModel] = field(default_factory=dict)
    status: list[VersionStatus] = field(default_factory=list)
    wanted: bool = True
    """False after an explicit unload: the model then does not count against readiness."""

    @property
    def healthy(self) -> bool:
        return bool(self.status) and all(s.state is State.READY for s in self.status)

    def reason(self) -> str:
        return "; ".join(s.reason for s in self.status if s.reason) or "not loaded"


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str
    models: dict[str, str] = field(default_factory=dict)
    """Reason per model that does not serve (listed even when readiness is not strict)."""


class ModelRepository:
    """Models under `settings.repository`, loaded at start-up and on request."""

    def __init__(self, settings: Settings, prepare: Prepare | None = None) -> None:
        self.root = settings.repository
        self._settings = settings
        self._absolute_prefixes = sorted(
            {f"{settings.repository.absolute()}{os.sep}", f"{settings.repository.resolve()}{os.sep}"},
            key=len,
            reverse=True,
        )
        self._prepare = prepare
        self._entries: dict[str, ModelEntry] = {}
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        """One lock per model while an operation on it runs or waits, gone after: names sent by clients
        (unload of 5,000 random names) must not accumulate."""
        self._loads: set[asyncio.Task[ModelEntry | None]] = set()
        """Loads in progress: each runs to its swap even when its caller goes away."""
        self._closed = False
        self._fingerprints: dict[str, Fingerprint | None] = {}
        """Each model directory as last read (poll mode reloads a model whose directory differs)."""
        self._poller: asyncio.Task[None] | None = None
        self.startup_done = False

    def scan(self, *, warn: bool = True) -> list[str]:
        """Model directory names on disk (hidden folders and names outside the pattern are skipped; `warn`
        logs the latter; poll mode, scanning every few seconds, does not)."""
        names = []
        for path in sorted(self.root.iterdir()):
            if not path.is_dir() or path.name.startswith("."):
                continue
            if not is_valid_model_name(path.name):
                if warn:
                    log.warning("model_name_invalid", extra={"path": str(path)})
                continue
            names.append(path.name)
        return names

    async def load_all(self) -> None:
        """Start-up: load every model on disk, one after the other (loading competes for the same cores)."""
        names = self.scan()
        pending = {name: ModelEntry(name, status=[VersionStatus(None, State.LOADING, "loading")]) for name in names}
        self._entries.update(pending)
        try:
            for name in names:
                try:
                    # Skipped when something else got there first: an unload sent meanwhile must stick.
                    await self._load(name, unless_changed_from=pending[name])
                except ModelNotFound:  # removed from disk since the scan
                    self._entries.pop(name, None)
                except LoadFailed:
                    pass  # recorded in the entry and logged; the other models still load
                except Exception as exc:  # a defect: this model fails, start-up goes on and ends
                    log.exception("model_load_crashed", extra={"model": name})
                    self._entries[name] = ModelEntry(
                        name, status=[VersionStatus(None, State.UNAVAILABLE, f"cannot load: {type(exc).__name__}")]
                    )
        finally:
            self.startup_done = True
        log.info("repository_loaded", extra={"models": len(names), "ready": self.readiness().ready})
        if self._settings.repository_poll_s > 0 and not self._closed:
            self._poller = asyncio.get_running_loop().create_task(self._poll_forever(), name="repository poll")

    async def _poll_forever(self) -> None:
        interval = self._settings.repository_poll_s
        log.info("repository_polling", extra={"interval_s": interval})
        while True:
            await asyncio.sleep(interval)
            try:
                await self.poll()
            except Exception:  # a defect must not end polling; the next pass tries again
                log.exception("repository_poll_failed")

    async def poll(self) -> None:
        """One pass of poll mode (Triton's `--model-control-mode=poll`): load new model directories,
        remove the ones gone from disk, reload those whose config.yaml or version folders changed,
        through the same no-drop swap as an explicit load. A reload that fails (a config.yaml that does
        not parse, say) keeps the served versions and is logged; it is tried again once the files change
        again. A model unloaded on purpose stays unloaded until loaded on purpose."""
        on_disk = await asyncio.to_thread(self._scan_fingerprints)
        for name in sorted(self._entries.keys() - on_disk.keys()):
            await self._remove(name)
        for name, stamp in on_disk.items():
            entry = self._entries.get(name)
            if entry is not None and (not entry.wanted or self._fingerprints.get(name) == stamp):
                continue
            log.info("repository_change", extra={"model": name, "change": "new" if entry is None else "changed"})
            with contextlib.suppress(LoadFailed, ModelNotFound):  # logged by _swap; gone again since the scan
                await self.load(name)

    def _scan_fingerprints(self) -> dict[str, Fingerprint]:
        return {name: fingerprint(self.root / name) for name in self.scan(warn=False)}

    async def _remove(self, name: str) -> None:
        """A model directory gone from disk: stop serving it (requests in flight finish) and forget it."""
        async with self._lock(name):
            entry = self._entries.pop(name, None)
            self._fingerprints.pop(name, None)
            if entry is None:
                return
            for model in entry.served.values():
                model.retire()
            log.info("model_removed", extra={"model": name})

    async def load(self, name: str) -> ModelEntry:
        """(Re)load a model from disk and swap it in; its old versions retire once their requests end."""
        entry = await self._load(name)
        assert entry is not None
        return entry

    async def _load(self, name: str, unless_changed_from: ModelEntry | None = None) -> ModelEntry | None:
        """Load in a task of its own, shielded from the caller: a client that hangs up (its request
        cancelled) must not discard a finished load, nor release the model's lock while the loading
        thread still runs, so that a retry would load a second time beside it."""
        path = self._model_dir(name)
        task = asyncio.get_running_loop().create_task(self._load_locked(name, path, unless_changed_from))
        self._loads.add(task)
        task.add_done_callback(self._load_ended)
        return await asyncio.shield(task)

    async def _load_locked(self, name: str, path: Path, unless_changed_from: ModelEntry | None) -> ModelEntry | None:
        async with self._lock(name):
            if unless_changed_from is not None and self._entries.get(name) is not unless_changed_from:
                return None
            outcome = await asyncio.to_thread(load_model_dir, path, self._settings, self._prepare)
            self._fingerprints[name] = outcome.fingerprint
            return self._swap(name, outcome)

    def _load_ended(self, task: asyncio.Task[ModelEntry | None]) -> None:
        self._loads.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a failure was logged by _swap, and its caller may be gone

    def _lock(self, name: str) -> asyncio.Lock:
        """The model's lock; it lives as long as someone holds or awaits it (no await between get and use)."""
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    def relative(self, text: str) -> str:
        """`text` with the repository's absolute path taken out of file names: reasons reach clients,
        who must not learn where the server keeps its files (the log keeps the full paths)."""
        for prefix in self._absolute_prefixes:
            text = text.replace(prefix, "")
        return text

    def _swap(self, name: str, outcome: LoadOutcome) -> ModelEntry:
        if self._closed:  # a load that outlived its server (shutdown while it ran): it never serves
            for model in outcome.ready.values():
                model.retire()
            raise load_failed(name, "not swapped in, the server is shutting down")
        previous = self._entries.get(name)
        for reason in [outcome.error, *outcome.failed.values()]:
            if reason:
                log.error("model_load_failed", extra={"model": name, "reason": reason})
        status = [VersionStatus(v, State.READY) for v in sorted(outcome.ready)]
        status += [
            VersionStatus(v, State.UNAVAILABLE, self.relative(reason)) for v, reason in sorted(outcome.failed.items())
        ]
        if outcome.error:
            status.append(VersionStatus(None, State.UNAVAILABLE, self.relative(outcome.error)))
        if not outcome.ready and previous is not None and previous.served:
            raise load_failed(
                name, f"versions {sorted(previous.served)} keep serving: " + "; ".join(s.reason for s in status)
            )
        entry = ModelEntry(name, config=outcome.config, served=outcome.ready, status=status)
        self._entries[name] = entry
        if previous is not None:
            for model in previous.served.values():
                model.retire()
        if not outcome.ready:
            raise load_failed(name, entry.reason())
        return entry

    async def unload(self, name: str) -> None:
        if name not in self._entries:  # checked before taking a lock: unknown names leave nothing behind
            raise unknown_model(name)
        async with self._lock(name):
            entry = self._entries.get(name)
            if entry is None:
                raise unknown_model(name)
            self._entries[name] = ModelEntry(
                name,
                config=entry.config,
                status=[VersionStatus(None, State.UNAVAILABLE, "unloaded")],
                wanted=False,
            )
            for model in entry.served.values():
                model.retire()
            log.info("model_unloaded", extra={"model": name})

    def close(self) -> None:
        self._closed = True
        if self._poller is not None:
            self._poller.cancel()
        for entry in self._entries.values():
            for model in entry.served.values():
                model.retire()
        self._entries.clear()

    def entry(self, name: str) -> ModelEntry:
        """The entry of a known model; a model on disk that was never loaded is not ready, not unknown."""
        if name in self._entries:
            return self._entries[name]
        if is_valid_model_name(name) and (self.root / name).is_dir():
            raise no_available_versions(name, f"not loaded; POST /v2/repository/models/{name}/load")
        raise unknown_model(name)

    def entries(self) -> list[ModelEntry]:
        return [self._entries[name] for name in sorted(self._entries)]

    def lookup(self, name: str, version: int | None = None) -> ServedModel:
        """The version to serve: the one asked for, else the highest ready one."""
        entry = self.entry(name)
        if version is None:
            if not entry.served:
                raise no_available_versions(name, entry.reason())
            return entry.served[max(entry.served)]
        if version in entry.served:
            return entry.served[version]
        for status in entry.status:
            if status.version == version:
                raise version_not_ready(name, version, status.reason or "loading")
        raise unknown_version(name, version, sorted(entry.served))

    @contextmanager
    def lease(self, name: str, version: int | None = None) -> Iterator[ServedModel]:
        """The served version, kept open until the block ends even if a reload retires it meanwhile."""
        model = self.lookup(name, version)
        model.acquire()
        try:
            yield model
        finally:
            model.release()

    def readiness(self) -> Readiness:
        """Ready under the rule in the settings, with the reason when not."""
        if not self.startup_done:
            return Readiness(False, "models are loading")
        wanted = [e for e in self._entries.values() if e.wanted]
        if not wanted and not self._settings.ready_when_empty:
            return Readiness(False, "no model in the repository (NNSERVE_READY_WHEN_EMPTY=true allows that)")
        problems = {e.name: e.reason() for e in wanted if not e.healthy}
        if problems and self._settings.strict_readiness:
            return Readiness(False, "some models are not ready", problems)
        return Readiness(True, "", problems)

    def index(self, ready_only: bool = False) -> list[dict[str, str]]:
        """Repository-extension index: one row per version (or per model when no version applies)."""
        rows = []
        for entry in self.entries():
            for status in entry.status:
                rows.append(
                    {
                        "name": entry.name,
                        "version": "" if status.version is None else str(status.version),
                        "state": status.state.value,
                        "reason": status.reason,
                    }
                )
        for name in self.scan():
            if name not in self._entries:
                rows.append(
                    {"name": name, "version": "", "state": State.UNAVAILABLE.value, "reason": "not loaded"}
                )
        rows.sort(key=lambda row: (row["name"], int(row["version"] or -1)))
        return [row for row in rows if row["state"] == State.READY.value] if ready_only else rows

    def _model_dir(self, name: str) -> Path:
        if not is_valid_model_name(name) or not (self.root / name).is_dir():
            raise ModelNotFound(f"failed to load '{name}': no model directory {name!r} in the repository")
        return self.root / name
