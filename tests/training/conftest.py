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


@pytest.fixture(scope="session")
def fit_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Users' data made from data that ships in packages, written once per session (sample_data.py)."""
    from training.fit import sample_data

    root = tmp_path_factory.mktemp("fit-data")
    return {
        "digits": sample_data.write_digit_folders(root / "digits", size=16),
        "sms_csv": sample_data.write_sms(root / "sms.csv", limit=1200),
        "sms_jsonl": sample_data.write_sms(root / "sms.jsonl", limit=1200),
        "breast_cancer": sample_data.write_tabular(root / "breast_cancer.csv", "breast_cancer"),
        "wine": sample_data.write_tabular(root / "wine.csv", "wine"),
        "iris": sample_data.write_tabular(root / "iris.csv", "iris"),
        "plays": sample_data.write_corpus(root / "plays"),
    }
