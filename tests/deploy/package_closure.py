"""What an image would install, and what a Python file imports, read from this venv's metadata."""

from __future__ import annotations

import ast
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def closure(requirements: list[str]) -> set[str]:
    """Canonical names of the requirements and everything they require (extras followed, markers applied)."""
    pending = [Requirement(r) for r in requirements]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        if name in seen:
            continue
        seen.add(name)
        extras = requirement.extras or {""}
        for text in metadata.requires(name) or []:
            child = Requirement(text)
            if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in extras):
                pending.append(Requirement(str(child).split(";")[0]))
    return seen


def third_party_imports(entry: Path, package_root: Path) -> set[str]:
    """Distributions imported by `entry` and by the modules of its own package it imports, recursively."""
    package = package_root.name
    modules = {entry}
    done: set[Path] = set()
    top_level: set[str] = set()
    while modules:
        path = modules.pop()
        done.add(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                head, _, rest = name.partition(".")
                if head != package:
                    top_level.add(head)
                    continue
                local = package_root.joinpath(*rest.split(".")).with_suffix(".py") if rest else None
                if local is not None and local.exists() and local not in done:
                    modules.add(local)
    third_party = top_level - set(sys.stdlib_module_names) - {"__future__"}
    owners = metadata.packages_distributions()
    missing = sorted(m for m in third_party if m not in owners)
    if missing:
        raise LookupError(f"no installed distribution provides {missing} (imported from {entry})")
    return {canonicalize_name(owners[m][0]) for m in third_party}
