"""The wheel's metadata, as pip reads it: `pip install 'nnserve[gpu]'` alone resolves onnxruntime-gpu and
never the CPU onnxruntime (both ship the `onnxruntime` module, so side by side one overwrites the other);
`nnserve[cpu]` (what `make serve` installs) the CPU one. Built offline with setuptools' PEP 517 hook."""

from __future__ import annotations

import shutil
import subprocess
import sys
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
RUNTIMES = {"onnxruntime", "onnxruntime-gpu"}


@pytest.fixture(scope="module")
def requires_dist(tmp_path_factory: pytest.TempPathFactory) -> list[Requirement]:
    out = tmp_path_factory.mktemp("metadata")
    build = tmp_path_factory.mktemp("build")  # a copy of the project's metadata files: nothing lands in the tree
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, build / name)
    code = (
        "import sys; from setuptools import build_meta; print(build_meta.prepare_metadata_for_build_wheel(sys.argv[1]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(out)], cwd=build, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(build), "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    dist_info = out / result.stdout.strip().splitlines()[-1]
    metadata = Parser().parsestr((dist_info / "METADATA").read_text(encoding="utf-8"))
    return [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]


def _resolved(requires: list[Requirement], *extras: str) -> set[str]:
    """The direct requirements pip installs for `nnserve[extras]`."""
    environments = [{"extra": extra} for extra in ("", *extras)]
    return {
        canonicalize_name(r.name)
        for r in requires
        if r.marker is None or any(r.marker.evaluate(env) for env in environments)
    }


@pytest.mark.parametrize(
    ("extras", "runtime"),
    [(("gpu",), "onnxruntime-gpu"), (("cpu",), "onnxruntime"), (("gpu", "train"), "onnxruntime-gpu")],
)
def test_install_with_an_extra_gets_exactly_one_onnx_runtime(
    requires_dist: list[Requirement], extras: tuple[str, ...], runtime: str
) -> None:
    assert _resolved(requires_dist, *extras) & RUNTIMES == {runtime}


def test_core_dependencies_name_no_onnx_runtime(requires_dist: list[Requirement]) -> None:
    assert _resolved(requires_dist) & RUNTIMES == set()
    assert {"fastapi", "numpy", "uvicorn"} <= _resolved(requires_dist)


def test_make_serve_installs_the_cpu_runtime() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "pip install -q -e '.[cpu]'" in makefile
