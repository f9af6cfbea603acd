"""The machine a benchmark ran on, recorded with its numbers so they can be judged and reproduced."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def gpu_name() -> str | None:
    """The first NVIDIA GPU's name, when nvidia-smi is there to ask."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe(provider: str) -> dict[str, str]:
    import onnxruntime as ort

    load1, load5, _ = os.getloadavg()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "logical cores": str(os.cpu_count()),
        "load average (1 min, 5 min) at start": f"{load1:.2f}, {load5:.2f}",
        "gpu": gpu_name() or "none",
        "python": platform.python_version(),
        "onnxruntime": f"{ort.__version__} (available providers: {', '.join(ort.get_available_providers())})",
        "provider measured": provider,
        "uvicorn": _version("uvicorn"),
        "fastapi": _version("fastapi"),
        "commit": git_commit(),
    }
