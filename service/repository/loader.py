"""Turn one model directory into served versions: config, version policy, sessions, graph validation.

Blocking (sessions take a while to create): the registry calls it from a worker thread. Each failure
becomes a reason string naming the file and field, attached to the model or the one version it hits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from service.repository.fingerprint import Fingerprint, fingerprint
from service.repository.graph import graph_specs, input_dim_names, reconcile
from service.runtime.model import ServedModel
from service.runtime.session import LoadError, SessionOptions, create_session
from service.runtime.threads import plan_threads
from service.schema.config import (
    CONFIG_FILE,
    MODEL_FILE,
    ConfigError,
    ModelConfig,
    list_versions,
    load_config,
    select_versions,
)
from service.settings import Settings

log = logging.getLogger(__name__)

Prepare = Callable[[ServedModel], None]
"""Called on each new version before it serves (the API layer builds its task pipeline); raising fails it."""


@dataclass
class LoadOutcome:
    """What loading one model directory produced: ready versions and a reason for each failure."""

    config: ModelConfig | None
    ready: dict[int, ServedModel] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    error: str = ""
    """A failure of the whole model (bad config.yaml, no version to serve)."""
    fingerprint: Fingerprint | None = None
    """The directory as it was just before it was read (poll mode compares it)."""


def load_version(model_dir: Path, version: int, config: ModelConfig, settings: Settings) -> ServedModel:
    """Sessions for `<model_dir>/<version>/model.onnx`, checked against the config."""
    path = model_dir / str(version) / MODEL_FILE
    threads = plan_threads(
        instances=config.execution.instances,
        reserved_cores=settings.reserved_cores,
        model_intra=config.execution.intra_op_threads,
        model_inter=config.execution.inter_op_threads,
        server_intra=settings.intra_op_threads,
        server_inter=settings.inter_op_threads,
    )
    options = SessionOptions(
        providers=tuple(settings.providers or config.execution.providers),
        threads=threads,
        graph_optimization_level=config.execution.graph_optimization_level,
        spinning=settings.thread_spinning,
        cpu_arena=settings.cpu_arena,
    )
    sessions = [create_session(path, options) for _ in range(config.execution.instances)]
    inputs, outputs = reconcile(
        config,
        graph_specs(sessions[0].get_inputs(), f"{path}: input"),
        graph_specs(sessions[0].get_outputs(), f"{path}: output"),
        model_dir / CONFIG_FILE,
    )
    try:
        effective = ModelConfig.model_validate(
            {**config.model_dump(), "name": model_dir.name, "inputs": inputs, "outputs": outputs}
        )
    except ValidationError as exc:
        problems = "; ".join(err["msg"] for err in exc.errors())
        raise LoadError(f"{model_dir / CONFIG_FILE}: {problems}") from None
    return ServedModel(
        name=model_dir.name,
        version=version,
        config=effective,
        directory=path.parent,
        inputs=inputs,
        outputs=outputs,
        sessions=sessions,
        input_dims=input_dim_names(sessions[0].get_inputs()),
        cpu_arena=settings.cpu_arena,
        cpu_arena_shrink_s=settings.cpu_arena_shrink_s,
    )


def read_config(model_dir: Path) -> ModelConfig:
    """`load_config`, with every way of failing to read the file (not UTF-8, unreadable, a folder) turned
    into a ConfigError naming the file, so one model's files can never stop the others from loading."""
    path = model_dir / CONFIG_FILE
    try:
        return load_config(model_dir)
    except ConfigError:
        raise
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except Exception as exc:
        log.exception("config_read_failed", extra={"path": str(path)})
        raise ConfigError(f"{path}: cannot read: {type(exc).__name__}: {exc}") from None


def load_model_dir(model_dir: Path, settings: Settings, prepare: Prepare | None) -> LoadOutcome:
    """Every version the policy selects; a broken version fails alone, a broken config fails the model.

    Never raises: any failure (an unexpected one too) becomes the reason of the version or model it hits.
    """
    stamp = fingerprint(model_dir)
    try:
        config = read_config(model_dir)
        available = list_versions(model_dir)
    except ConfigError as exc:
        return LoadOutcome(config=None, error=str(exc), fingerprint=stamp)
    except OSError as exc:
        reason = f"{model_dir}: cannot list the version folders: {exc.strerror or exc}"
        return LoadOutcome(config=None, error=reason, fingerprint=stamp)
    selected = select_versions(config.version_policy, available)
    outcome = LoadOutcome(config=config, fingerprint=stamp)
    if not selected:
        outcome.error = (
            f"{model_dir}: version_policy {config.version_policy.model_dump()} selects no version; "
            f"version folders on disk: {available or 'none'} (expected <version>/{MODEL_FILE})"
        )
        return outcome
    for version in selected:
        started = time.perf_counter()
        try:
            model = load_version(model_dir, version, config, settings)
        except (LoadError, OSError) as exc:
            outcome.failed[version] = str(exc)
            continue
        except Exception as exc:  # a defect, not a bad file: keep the traceback, fail this version only
            log.exception("version_load_crashed", extra={"path": str(model_dir / str(version))})
            outcome.failed[version] = f"{model_dir / str(version)}: cannot load: {type(exc).__name__}: {exc}"
            continue
        try:
            if prepare is not None:
                prepare(model)
        except Exception as exc:
            model.retire()
            outcome.failed[version] = str(exc)
            continue
        outcome.ready[version] = model
        log.info(
            "model_loaded",
            extra={
                "model": model.name,
                "version": version,
                "provider": model.provider,
                "intra_op_threads": model.threads,
                "seconds": round(time.perf_counter() - started, 3),
            },
        )
    return outcome
