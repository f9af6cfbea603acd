"""Deploying over the API: a repository load with Triton's `config` and `file:<version>/<name>` parameters.

Triton applies these to one load and writes nothing. nnserve writes them into the repository, so what
serves is always what is on disk, and a restart (or a second replica reading the same volume) serves
the same model:

- `config` alone: the override (service.protocol.config_override) applied to the current config.yaml,
  written in place atomically (a temporary file, then `os.replace`), then the model is (re)loaded.
- `config` with `file:` parameters: the files form the whole model directory, as Triton's extension
  says. They are written with the config.yaml into a hidden folder the server ignores, which then
  replaces `<repository>/<name>` by rename (the old folder is renamed aside first, then removed).

Either way, when the load fails the previous config.yaml or folder is put back (the versions served
before keep serving, as with any failed reload) and the error says why. Writing files needs an API key
even where the rest of the API has none: uploading is the one request that puts new bytes on the
server's disk.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from service.errors import Forbidden, PayloadTooLarge, load_failed
from service.protocol.config_override import ConfigOverrideError, parse_config_override
from service.repository.registry import ModelRepository
from service.schema.config import CONFIG_FILE, ConfigError, ModelConfig, dump_config, is_valid_model_name, load_config
from service.settings import Settings

FILE_PREFIX = "file:"
_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
FILE_KEY = re.compile(rf"file:(?P<version>[1-9][0-9]{{0,8}})/(?P<path>{_SEGMENT}(?:/{_SEGMENT}){{0,3}})")
"""`file:<version>/<path>`: a positive version, then up to four path segments, none starting with a dot,
so no name can climb out of its version folder (`..`) or hide from the loader."""
KNOWN_PARAMETERS = frozenset({"config"})
_locks: dict[str, asyncio.Lock] = {}


@dataclass(frozen=True)
class LoadParameters:
    config: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    """Relative path inside the model folder (`1/model.onnx`) -> content."""


def read_load_parameters(name: str, parameters: Mapping[str, object], settings: Settings) -> LoadParameters:
    """The checked parameters of a load request; LoadFailed (400) or PayloadTooLarge (413) naming the key."""
    files: dict[str, bytes] = {}
    total = 0
    for key, value in parameters.items():
        if key in KNOWN_PARAMETERS or not key.startswith(FILE_PREFIX):
            if key not in KNOWN_PARAMETERS:
                raise load_failed(name, f"parameters.{key}: not supported; supported: config, file:<version>/<name>")
            continue
        match = FILE_KEY.fullmatch(key)
        if match is None:
            raise load_failed(
                name,
                f"parameters.{key!r}: expected file:<version>/<name> with a positive version and names of "
                "letters, digits, '_', '.', '-' (not starting with '.')",
            )
        if len(files) >= settings.max_upload_files:
            raise PayloadTooLarge(f"parameters: more than max_upload_files ({settings.max_upload_files}) files")
        content = _file_content(name, key, value)
        total += len(content)
        if total > settings.max_upload_bytes:
            raise PayloadTooLarge(
                f"parameters.{key}: uploaded files pass max_upload_bytes ({settings.max_upload_bytes} bytes)"
            )
        files[f"{match['version']}/{match['path']}"] = content
    config = parameters.get("config")
    if config is not None and not isinstance(config, str):
        raise load_failed(name, f"parameters.config: expected a JSON string, got {type(config).__name__}")
    if files and config is None:
        raise load_failed(name, "file: parameters need a config parameter, the config of the folder they form")
    if files and not settings.admin_keys:
        raise Forbidden(
            "parameters: uploading model files needs an API key; set NNSERVE_API_KEYS and send it "
            "(Authorization: Bearer <key> or X-API-Key)"
        )
    return LoadParameters(config, files)


def _file_content(name: str, key: str, value: object) -> bytes:
    """A file parameter's bytes: base64 text over HTTP's JSON, the bytes themselves over gRPC (Triton's
    `bytes_param`, as tritonclient.grpc's `load_model(files=...)` sends them)."""
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise load_failed(name, f"parameters.{key}: expected base64 text or bytes, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise load_failed(name, f"parameters.{key}: not valid base64") from None


async def deploy(repository: ModelRepository, name: str, parameters: LoadParameters) -> None:
    """Write the override into the repository, load it, and put the old state back if the load fails."""
    if not is_valid_model_name(name):
        raise load_failed(name, f"model name {name!r} is not valid (letters, digits, '_', '.', '-'; at most 128)")
    async with _locks.setdefault(name, asyncio.Lock()):
        model_dir = repository.root / name
        if parameters.files:
            config = _override(name, parameters.config, ModelConfig())
            restore = await asyncio.to_thread(_replace_folder, model_dir, config, parameters.files)
        else:
            base = _current_config(repository, name)
            config = _override(name, parameters.config, base)
            restore = await asyncio.to_thread(_replace_config, model_dir, config)
        try:
            await repository.load(name)
        except Exception:  # LoadFailed above all; a cancelled request leaves the load to finish as written
            await asyncio.to_thread(restore, True)
            raise
        await asyncio.to_thread(restore, False)


def _override(name: str, text: str | None, base: ModelConfig) -> ModelConfig:
    try:
        return parse_config_override(text, name, base)
    except ConfigOverrideError as exc:
        raise load_failed(name, str(exc)) from None


def _current_config(repository: ModelRepository, name: str) -> ModelConfig:
    model_dir = repository.root / name
    if not model_dir.is_dir():
        raise load_failed(name, f"no model directory {name!r} in the repository; send its files as file: parameters")
    try:
        return load_config(model_dir)
    except ConfigError as exc:
        raise load_failed(name, repository.relative(str(exc))) from None


Restore = Callable[[bool], None]
"""Called once after the load: `True` puts the previous state back, `False` removes what it kept aside."""


def _replace_config(model_dir: Path, config: ModelConfig) -> Restore:
    path = model_dir / CONFIG_FILE
    previous = path.read_bytes() if path.exists() else None
    _write_atomically(path, dump_config(config).encode())

    def restore(undo: bool) -> None:
        if undo and previous is None:
            path.unlink(missing_ok=True)
        elif undo and previous is not None:
            _write_atomically(path, previous)

    return restore


def _replace_folder(model_dir: Path, config: ModelConfig, files: dict[str, bytes]) -> Restore:
    tag = uuid.uuid4().hex[:12]
    staged = model_dir.parent / f".upload-{model_dir.name}-{tag}"
    aside = model_dir.parent / f".replaced-{model_dir.name}-{tag}"
    had_previous = model_dir.exists()
    try:
        staged.mkdir()
        (staged / CONFIG_FILE).write_text(dump_config(config), encoding="utf-8")
        for relative, content in files.items():
            target = staged / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        if had_previous:
            model_dir.rename(aside)
        staged.rename(model_dir)
    except BaseException:
        if had_previous and aside.exists() and not model_dir.exists():
            aside.rename(model_dir)
        shutil.rmtree(staged, ignore_errors=True)
        raise

    def restore(undo: bool) -> None:
        if undo:
            failed = model_dir.parent / f".failed-{model_dir.name}-{tag}"
            model_dir.rename(failed)
            if had_previous:
                aside.rename(model_dir)
            shutil.rmtree(failed, ignore_errors=True)
        elif had_previous:
            shutil.rmtree(aside, ignore_errors=True)

    return restore


def _write_atomically(path: Path, content: bytes) -> None:
    """Readers see the old file or the new one, never a part (a temporary file renamed over it)."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
