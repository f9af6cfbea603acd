"""Constants shared by the training tests (a plain module: conftest.py is not importable by name)."""

from __future__ import annotations

from pathlib import Path

COMMITTED = Path(__file__).resolve().parents[2] / "models"
FAMILIES = ("digits-cnn", "text-lstm", "text-transformer", "digits-ae")
"""The families owned by this package's tests (tiny-gpt has its own, under tests/generation)."""
TEXT_FAMILIES = ("text-lstm", "text-transformer")
