"""Shared fixture: one dry-run repository with every family, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from training_testkit import FAMILIES

from training.cli import main


@pytest.fixture(scope="session")
def dry_run_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every family trained with --dry-run through the CLI into a fresh repository (what CI runs)."""
    repository = tmp_path_factory.mktemp("repository")
    for name in FAMILIES:
        assert main(["train", name, "--dry-run", "--no-progress", "--repository", str(repository)]) == 0
    return repository
