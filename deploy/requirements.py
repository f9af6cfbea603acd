"""Print the service's pip requirements, read from pyproject.toml, one per line.

The images install dependencies in a layer of their own, before the source is copied, so a code change
does not reinstall every wheel; this script keeps that layer driven by the project's own metadata
instead of a second, hand-kept requirements list. Standard library only: it runs in a bare base image.

    python deploy/requirements.py --extra cpu   # the CPU image
    python deploy/requirements.py --extra gpu   # the GPU image
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalized_name(requirement: str) -> str:
    """The PEP 503 name of a requirement string (`uvicorn[standard]>=0.30` -> `uvicorn`)."""
    match = _NAME.match(requirement)
    if match is None:
        raise ValueError(f"cannot read a package name from requirement {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def requirements(pyproject: Path, extras: list[str], exclude: list[str]) -> list[str]:
    """The core dependencies plus the named extras, minus the excluded package names."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [e for e in extras if e not in optional]
    if unknown:
        raise SystemExit(f"{pyproject}: no optional-dependencies extra named {', '.join(unknown)}")
    wanted = list(project.get("dependencies", []))
    for extra in extras:
        wanted.extend(optional[extra])
    dropped = {normalized_name(name) for name in exclude}
    return [req for req in wanted if normalized_name(req) not in dropped]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pyproject", type=Path, default=Path("pyproject.toml"), help="default: ./pyproject.toml"
    )
    parser.add_argument(
        "--extra", action="append", default=[], help="add an extra's requirements (repeatable)"
    )
    parser.add_argument(
        "--exclude", action="append", default=[], help="drop a package by name (repeatable), e.g. onnxruntime"
    )
    args = parser.parse_args(argv)
    sys.stdout.write("".join(f"{req}\n" for req in requirements(args.pyproject, args.extra, args.exclude)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
