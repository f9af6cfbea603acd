"""Where versions go in a model repository, in the format `service.schema.config` defines: model
folders, version numbers, the latest version. Writing a version atomically is training/fit/release.py."""

from __future__ import annotations

from pathlib import Path

from service.schema.config import (
    is_valid_model_name,
    list_versions,
)


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
