"""Constants shared by the GAN tests (a plain module: conftest.py is not importable by name)."""

from __future__ import annotations

from pathlib import Path

COMMITTED = Path(__file__).resolve().parents[2] / "models"
MAX_GENERATED = 40
"""The server's max_generated_images in these tests: low, so the cap is cheap to cross."""
