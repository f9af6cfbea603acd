"""Writing versions into a model repository, in the format `service.schema.config` defines.

A new version is assembled in a hidden staging folder and renamed into place once its graph and
config are complete, so a server polling the repository never loads a half-written model.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from service.schema.config import (
    CARD_FILE,
    CURVES_FILE,
    METRICS_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    ModelConfig,
    is_valid_model_name,
    list_versions,
    write_config,
)

ARTIFACTS = (MODEL_FILE, CARD_FILE, METRICS_FILE, CURVES_FILE, TOKENIZER_FILE)


def model_dir(repository: Path, name: str) -> Path:
    if not is_valid_model_name(name):
        raise ValueError(f"invalid model name {name!r}")
    return repository / name


def resolve_version(repository: Path, name: str, version: int | None) -> tuple[int, Path]:
    """The existing version to evaluate: `version`, or the highest present."""
    directory = model_dir(repository, name)
    versions = list_versions(directory) if directory.is_dir() else []
    if not versions:
        raise FileNotFoundError(f"no versions of {name!r} under {repository}; train it first")
    chosen = versions[-1] if version is None else version
    if chosen not in versions:
        raise FileNotFoundError(f"{name!r} has no version {chosen} under {repository}; present: {versions}")
    return chosen, directory / str(chosen)


def new_version_number(repository: Path, name: str, requested: int | None) -> int:
    """`requested` (an existing one is replaced), else one more than the highest present."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"version must be a positive integer, got {requested}")
        return requested
    directory = model_dir(repository, name)
    versions = list_versions(directory) if directory.is_dir() else []
    return (versions[-1] + 1) if versions else 1


def staging_dir(repository: Path, name: str, version: int) -> Path:
    """An empty folder the server ignores (its name is not a number), to build `version` in."""
    path = model_dir(repository, name) / f".staging-{version}"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def commit_version(repository: Path, name: str, version: int, staged: Path, config: ModelConfig) -> Path:
    """Write the model's config.yaml and move the staged folder into place as `<version>/`."""
    directory = model_dir(repository, name)
    write_config(directory, config)
    final = directory / str(version)
    if final.exists():
        for artifact in ARTIFACTS:
            (final / artifact).unlink(missing_ok=True)
        for item in staged.iterdir():
            item.replace(final / item.name)
        staged.rmdir()
    else:
        staged.rename(final)
    return final
